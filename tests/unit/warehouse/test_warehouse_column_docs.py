"""The warehouse's column descriptions: one file, each text written once, references and variables resolved."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import pytest
import yaml

import agents.scoring
from data import score_tiers
from data.score_tiers import HIGH_FROM, MEDIUM_FROM
from data.warehouse.column_docs import COLUMN_DOCS_PATH, ColumnDocsError, column_descriptions
from data.warehouse.project import MODEL_NAMES
from data.warehouse.variables import ModelVariables, project_variables


def test_every_model_has_a_section_and_no_text_is_written_twice():
    sections = yaml.safe_load(COLUMN_DOCS_PATH.read_text(encoding="utf-8"))
    assert set(sections) == set(MODEL_NAMES)
    texts = collections.Counter(" ".join(text.split()) for columns in sections.values()
                                for text in columns.values() if isinstance(text, str))
    assert not [text for text, n in texts.items() if n > 1]


def test_a_column_passed_on_reads_the_text_of_the_model_that_makes_it():
    c360 = column_descriptions("marts_marketing_customer_360")
    assert c360["email"] == column_descriptions("intermediate_customers_profiles")["email"]
    assert c360["customer_id"] == column_descriptions("intermediate_customers_activity")["customer_id"]
    renamed = column_descriptions("intermediate_customers_summary")["form_acquisition_source"]
    assert renamed == column_descriptions("intermediate_customers_profiles")["acquisition_source"]


def test_descriptions_state_the_values_the_sql_uses():
    lead = column_descriptions("marts_sales_lead_scores", project_variables().get)
    assert "High (>= 0.8), Medium (>= 0.5)" in lead["lead_tier"]
    churn = column_descriptions("marts_marketing_customer_360", project_variables(ModelVariables(churn_rule_days=45.0)).get)
    assert churn["churn_risk_score"].endswith("/ 45).")


def test_the_lead_tiers_are_the_scoring_agents():
    assert agents.scoring.tier_of is score_tiers.tier_of
    values = ModelVariables()
    assert (values.lead_tier_high * 100, values.lead_tier_medium * 100) == (HIGH_FROM, MEDIUM_FROM)
    assert [score_tiers.tier_of(s) for s in (80.0, 79.99, 50.0, 49.99)] == ["High", "Medium", "Medium", "Low"]


@pytest.mark.parametrize(("text", "message"), [
    ("a:\n  x: {from: b}\n", "a.x refers to b.x, which is not described"),
    ("a:\n  x: {from: b.y}\nb:\n  y: {from: a.x}\n", "circular references: a.x -> b.y -> a.x"),
    ("a:\n  x: 3\n", "a.x must be a description or {from: model[.column]}"),
    ("a:\n  x: {see: b}\n", "a.x must be a description or {from: model[.column]}"),
    ("- a\n", "expected `model: {column: description}` sections"),
])
def test_a_broken_file_names_the_problem(tmp_path: Path, text: str, message: str):
    path = tmp_path / "columns.yaml"
    path.write_text(text)
    with pytest.raises(ColumnDocsError, match=re.escape(message)):
        column_descriptions("a", path=path)


def test_an_unknown_model_or_variable_is_named(tmp_path: Path):
    path = tmp_path / "columns.yaml"
    path.write_text("a:\n  x: Cut at {no_such_variable}.\n")
    with pytest.raises(ColumnDocsError, match="no columns for model 'b'"):
        column_descriptions("b", path=path)
    with pytest.raises(ColumnDocsError, match=r"a.x names \{no_such_variable\}, which is not a project variable"):
        column_descriptions("a", {}.get, path=path)
    assert column_descriptions("a", path=path) == {"x": "Cut at {no_such_variable}."}
