"""The DML that erasure runs on BigQuery, as text: a JSON column is searched and replaced as its JSON text and
parsed back (the emulator reports JSON columns as STRING, so only this test sees the JSON form)."""

from __future__ import annotations

from data.privacy.bigquery_scrub import BigQueryTable, null_pii_statement, replace_statement

RAW = BigQueryTable("p.ame.raw_events", {"event_id": "STRING", "customer_id": "STRING", "properties": "JSON",
                                         "url": "STRING", "amount": "FLOAT"})
MART = BigQueryTable("p.ame.marts_marketing_customer_360", {"customer_id": "STRING", "email": "STRING",
                                                            "first_name": "STRING", "total_revenue": "FLOAT"})


def test_values_are_replaced_in_text_and_json_columns_never_in_the_customer_id() -> None:
    sql = replace_statement(RAW, ["a@x.com", "+1555"], customer_only=False)
    assert sql is not None
    assert "`properties` = PARSE_JSON(REPLACE(REPLACE(TO_JSON_STRING(`properties`), @v0, @erased), @v1, @erased))" in sql
    assert "`url` = REPLACE(REPLACE(`url`, @v0, @erased), @v1, @erased)" in sql
    assert "`customer_id` =" not in sql.split(" WHERE ")[0] and "amount" not in sql
    assert "STRPOS(TO_JSON_STRING(`properties`), @v1) > 0" in sql and "@customer" not in sql


def test_names_are_replaced_only_in_the_customers_rows_and_nothing_runs_without_values() -> None:
    assert replace_statement(RAW, ["Ann"], customer_only=True).endswith("AND `customer_id` = @customer")
    assert replace_statement(RAW, [], customer_only=False) is None
    assert replace_statement(BigQueryTable("p.ame.t", {"n": "INTEGER"}), ["x"], customer_only=False) is None


def test_pii_columns_are_nulled_only_where_they_still_hold_a_value() -> None:
    sql = null_pii_statement(MART)
    assert sql == ("UPDATE `p.ame.marts_marketing_customer_360` SET `email` = NULL, `first_name` = NULL"
                   " WHERE `customer_id` = @customer AND (`email` IS NOT NULL OR `first_name` IS NOT NULL)")
    assert null_pii_statement(RAW) is None
