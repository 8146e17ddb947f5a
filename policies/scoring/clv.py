"""Customer lifetime value: BG/NBD (purchase frequency) and Gamma-Gamma (spend), by maximum likelihood.

BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2).
Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves", JMR 42(4).
Time is in weeks by default, as in the papers. Everything is vectorized numpy/scipy over customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from data.csvfile import SEPARATORS, CsvError, read_csv_table
from policies.scoring.errors import DataError, FitError

DAYS_PER_WEEK = 7.0


# ---- data: transactions -> RFM summary -------------------------------------------------------------


def read_transactions(
    path: str | Path, fmt: str = "auto", customer_col: str = "customer_id", date_col: str = "date", amount_col: str = "amount",
    sep: str | None = None,
) -> pd.DataFrame:
    """Transactions as columns customer_id, date (datetime64), amount.

    :param fmt: ``csv`` (a header naming the three columns), ``cdnow`` (Hardie's whitespace files, the
        master's 4 columns or the sample's 5) or ``auto`` (cdnow when the first line has no separator).
    :param sep: the CSV's separator (default: sniffed, see :func:`data.csvfile.read_csv_table`).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"transactions file {path} does not exist")
    if fmt == "auto":
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
        fmt = "csv" if sep or any(s in first for s in SEPARATORS) else "cdnow"
    if fmt == "cdnow":
        raw = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, engine="python")
        if not raw.iloc[0, -1].replace(".", "", 1).isdigit():  # the lifetimes copy of the master has a header
            raw = raw.iloc[1:]
        if raw.shape[1] not in (4, 5):
            raise DataError(f"{path}: a CDNOW file has 4 (master) or 5 (sample) columns, found {raw.shape[1]}")
        raw = raw.iloc[:, -4:]
        raw.columns = ["customer_id", "date", "cds", "amount"]
        frame = pd.DataFrame(
            {"customer_id": raw["customer_id"], "date": pd.to_datetime(raw["date"], format="%Y%m%d"), "amount": raw["amount"].astype(float)}
        )
        return frame.reset_index(drop=True)
    if fmt != "csv":
        raise DataError(f"unknown transactions format {fmt!r}; use auto, csv or cdnow")
    try:
        raw = read_csv_table(path, sep)
    except CsvError as error:
        raise DataError(str(error)) from None
    missing = [c for c in (customer_col, date_col, amount_col) if c not in raw.columns]
    if missing:
        raise DataError(f"{path} lacks column(s) {missing}; its columns are {list(raw.columns)} "
                        "(name them with --customer-col/--date-col/--amount-col)")
    dates = pd.to_datetime(raw[date_col], errors="coerce")
    amounts = pd.to_numeric(raw[amount_col], errors="coerce")
    bad = dates.isna() | amounts.isna()
    if bad.any():
        first = int(np.argmax(bad.to_numpy())) + 2
        raise DataError(f"{int(bad.sum())} rows of {path} have an unreadable date or amount (first at row {first})")
    return pd.DataFrame({"customer_id": raw[customer_col].astype(str), "date": dates, "amount": amounts.astype(float)})


def rfm_summary(
    transactions: pd.DataFrame, calibration_end: pd.Timestamp | str, holdout_end: pd.Timestamp | str | None = None,
    unit_days: float = DAYS_PER_WEEK,
) -> pd.DataFrame:
    """One row per customer who bought by ``calibration_end``: x (repeat purchase days), t_x, T, zbar
    (mean value of the repeat purchases) and, with ``holdout_end``, x_holdout (purchase days after
    ``calibration_end`` up to it) and the holdout length. Purchases on the same day count once (summed)."""
    cal_end = pd.Timestamp(calibration_end)
    daily = transactions.groupby(["customer_id", transactions["date"].dt.normalize()], sort=True)["amount"].sum().reset_index()
    cal = daily[daily["date"] <= cal_end]
    if cal.empty:
        raise DataError(f"no transactions on or before the calibration end {cal_end.date()}")
    grouped = cal.groupby("customer_id", sort=True)
    first = grouped["date"].min()
    last = grouped["date"].max()
    count = grouped.size()
    total = grouped["amount"].sum()
    first_amount = cal.loc[grouped["date"].idxmin(), ["customer_id", "amount"]].set_index("customer_id")["amount"]
    x = (count - 1).astype(float)
    out = pd.DataFrame(
        {
            "x": x,
            "t_x": (last - first).dt.days / unit_days,
            "T": (cal_end - first).dt.days / unit_days,
            "zbar": np.where(x > 0, (total - first_amount) / x.where(x > 0, 1.0), 0.0),
            "first_purchase": first,
        }
    )
    if holdout_end is not None:
        hold_end = pd.Timestamp(holdout_end)
        hold = daily[(daily["date"] > cal_end) & (daily["date"] <= hold_end)]
        out["x_holdout"] = hold.groupby("customer_id").size().reindex(out.index, fill_value=0).astype(float)
        out["holdout_length"] = (hold_end - cal_end).days / unit_days
    return out


# ---- BG/NBD ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BGNBD:
    """BG/NBD parameters: transaction rate ~ Gamma(r, alpha); dropout probability ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")

    def p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(still active at T | x, t_x, T)."""
        x = np.asarray(x, dtype=np.float64)
        odds = np.where(x > 0, self.a / (self.b + np.maximum(x, 1) - 1) * ((self.alpha + T) / (self.alpha + t_x)) ** (self.r + x), 0.0)
        return 1.0 / (1.0 + odds)

    def expected_transactions(self, t: np.ndarray | float) -> np.ndarray:
        """E[X(t)]: repeat transactions by a new customer in (0, t]."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        t = np.asarray(t, dtype=np.float64)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))

    def conditional_expected_transactions(self, t: float | np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: repeat transactions in (T, T + t] of a customer with that history."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x = np.asarray(x, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        head = (a + b + x - 1) / (a - 1)
        tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        return head * tail * self.p_alive(x, t_x, T)


def bgnbd_log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Total BG/NBD log-likelihood (equation 6 of the paper), computed in logs for stability."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    ll = a1 + a2 + np.logaddexp(a3, a4)
    return float(np.sum(ll if weights is None else ll * weights))


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> BGNBD:
    """Maximum likelihood over log-parameters (Nelder-Mead, then a BFGS polish)."""
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    if len(x) < 10:
        raise FitError(f"BG/NBD needs more customers than {len(x)}")
    if np.any(t_x > T + 1e-9) or np.any(x < 0):
        raise DataError("each customer needs 0 <= t_x <= T and x >= 0; check the calibration end date")
    # group identical histories: the likelihood is a sum over customers
    keys, _inverse, counts = np.unique(np.c_[x, t_x, T], axis=0, return_inverse=True, return_counts=True)
    ux, ut, uT = keys.T

    def nll(log_params: np.ndarray) -> float:
        value = -bgnbd_log_likelihood(np.exp(log_params), ux, ut, uT, counts)
        return value if np.isfinite(value) else 1e20

    start = np.log([1.0, max(T.mean(), 1e-3), 1.0, 1.0])
    first = minimize(nll, start, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-8})
    result = minimize(nll, first.x, method="BFGS")
    best = result if result.fun <= first.fun else first
    if not np.isfinite(best.fun):
        raise FitError(f"BG/NBD fit failed: {best.message}")
    r, alpha, a, b = np.exp(best.x)
    return BGNBD(float(r), float(alpha), float(a), float(b), float(-best.fun))


# ---- Gamma-Gamma -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GammaGamma:
    """Gamma-Gamma spend model: transaction value ~ Gamma(p, nu), nu ~ Gamma(q, gamma)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float = float("nan")

    @property
    def population_mean(self) -> float:
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("inf")

    def expected_spend(self, x: np.ndarray, zbar: np.ndarray) -> np.ndarray:
        """E[M | x, zbar]: a weighted mean of the population mean and the customer's own mean."""
        x = np.asarray(x, dtype=np.float64)
        zbar = np.asarray(zbar, dtype=np.float64)
        return (self.gamma + x * zbar) * self.p / (self.p * x + self.q - 1)


def gamma_gamma_log_likelihood(params: np.ndarray, x: np.ndarray, zbar: np.ndarray) -> float:
    p, q, g = params
    ll = (
        gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(g)
        + (p * x - 1) * np.log(zbar) + p * x * np.log(x) - (p * x + q) * np.log(g + x * zbar)
    )
    return float(np.sum(ll))


def fit_gamma_gamma(x: np.ndarray, zbar: np.ndarray) -> GammaGamma:
    """Maximum likelihood on the customers with at least one repeat purchase (x > 0, zbar > 0)."""
    x, zbar = np.asarray(x, dtype=np.float64), np.asarray(zbar, dtype=np.float64)
    keep = (x > 0) & (zbar > 0)
    if keep.sum() < 10:
        raise FitError(f"Gamma-Gamma needs repeat buyers with positive spend; found {int(keep.sum())}")
    x, zbar = x[keep], zbar[keep]

    def nll(log_params: np.ndarray) -> float:
        value = -gamma_gamma_log_likelihood(np.exp(log_params), x, zbar)
        return value if np.isfinite(value) else 1e20

    first = minimize(nll, np.log([1.0, 1.0, max(zbar.mean(), 1e-3)]), method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-8,
        "fatol": 1e-8})
    result = minimize(nll, first.x, method="BFGS")
    best = result if result.fun <= first.fun else first
    p, q, g = np.exp(best.x)
    return GammaGamma(float(p), float(q), float(g), float(-best.fun))


# ---- CLV -------------------------------------------------------------------------------------------


def customer_lifetime_value(
    bgnbd: BGNBD, spend: GammaGamma, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, zbar: np.ndarray,
    horizon: float = 52.0, annual_discount_rate: float = 0.10, step: float = 52.0 / 12, periods_per_year: float = 52.0,
) -> np.ndarray:
    """Discounted expected margin-free value over ``horizon`` (time units), summed per ``step``:
    sum_k (E[Y(t_k)] - E[Y(t_{k-1})]) * E[M] / (1 + d)^(t_k / periods_per_year)."""
    if annual_discount_rate < 0:
        raise DataError("the discount rate must be >= 0 (0.10 means 10% a year)")
    edges = np.r_[np.arange(step, horizon, step), horizon]
    cumulative = np.stack([bgnbd.conditional_expected_transactions(t, x, t_x, T) for t in edges])
    per_step = np.diff(np.vstack([np.zeros_like(cumulative[0]), cumulative]), axis=0)
    discount = (1.0 + annual_discount_rate) ** (-edges / periods_per_year)
    return (per_step * discount[:, None]).sum(axis=0) * spend.expected_spend(x, zbar)


def tracking_curve(bgnbd: BGNBD, first_purchase_weeks: np.ndarray, weeks: np.ndarray) -> np.ndarray:
    """Expected cumulative repeat transactions of the whole cohort at each week (paper's Figure 3):
    each customer contributes E[X(week - first purchase week)] once born."""
    since = np.asarray(weeks, dtype=np.float64)[:, None] - np.asarray(first_purchase_weeks, dtype=np.float64)[None, :]
    return np.where(since > 0, bgnbd.expected_transactions(np.maximum(since, 0.0)), 0.0).sum(axis=1)
