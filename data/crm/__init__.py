"""The CRM loop: sales tasks out to Salesforce, outcomes (opportunities won or lost, leads converted) back as events."""
