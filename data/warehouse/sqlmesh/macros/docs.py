"""Column descriptions from ``columns.yaml``, the one place they are written (data/warehouse/column_docs.py)."""

from __future__ import annotations

from sqlglot import exp
from sqlmesh import macro
from sqlmesh.core.macros import MacroEvaluator

from data.warehouse import column_docs as docs
from data.warehouse import variables


@macro()
def column_docs(evaluator: MacroEvaluator, model: exp.Expression) -> exp.Tuple:
    """``column_descriptions @column_docs(model)``: the model's column descriptions, references resolved and
    ``{variable}`` replaced by the variable's value (the config's variables are ``project_variables()``), so a
    description states the value the SQL uses."""
    described = docs.column_descriptions(model.name, variables.project_variables().get)
    return exp.Tuple(expressions=[exp.EQ(this=exp.column(column), expression=exp.Literal.string(text))
                                  for column, text in described.items()])
