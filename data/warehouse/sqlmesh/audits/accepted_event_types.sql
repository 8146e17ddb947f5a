-- The event types of data/events.py (a unit test keeps this list in step with EVENT_TYPES).
AUDIT (name accepted_event_types);
SELECT event_type, COUNT(*) AS n
FROM @this_model
WHERE event_type NOT IN (
  'lead_created', 'customer_attributes', 'page_view', 'content_download', 'email_sent', 'email_open', 'email_click', 'sms_sent',
  'email_delivered', 'email_bounced', 'sms_delivered', 'sms_failed', 'push_delivered', 'message_suppressed',
  'sms_click', 'push_sent', 'push_open', 'offer_sent', 'ad_impression', 'ad_click', 'auction_result',
  'purchase', 'unsubscribe', 'consent_changed', 'support_ticket', 'score_updated', 'decision_made', 'policy_promotion',
  'task_created', 'campaign_updated', 'identity_merged', 'customer_erased', 'data_accessed',
  'crm_task_synced', 'opportunity_won', 'opportunity_lost', 'lead_converted', 'schedule_run', 'model_challenge'
)
GROUP BY event_type
