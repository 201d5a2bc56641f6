"""Every registered strategy on a small hand-made series whose signal is worked out by hand.

Each case states the series, the rule and the arithmetic that gives the expected side of
every symbol the strategy emits. Series are built from exact log-price steps: `zigzag`
adds an alternating +a, -a wiggle (so an even number of steps nets exactly zero and the
realised volatility is known) to a constant drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pytest

from qgtm.core.enums import SignalDirection
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import AuxSeries, StrategyContext, cot_series_name
from qgtm.engine.strategies.registry import STRATEGIES, create

LONG, SHORT, FLAT = SignalDirection.LONG, SignalDirection.SHORT, SignalDirection.FLAT
START = date(2020, 1, 1)


def steps(drift: np.ndarray | float, n: int, amp: float = 0.01) -> np.ndarray:
    """Prices 100 * exp(cumsum(drift + wiggle)), wiggle = +amp, -amp, +amp, ..."""
    wiggle = np.where(np.arange(n) % 2 == 0, amp, -amp)
    return 100.0 * np.exp(np.cumsum(np.broadcast_to(drift, (n,)) + wiggle))


def turn(n: int, up: float, down_days: int) -> np.ndarray:
    """Drift +up for n - down_days sessions, then -up for the last down_days."""
    drift = np.r_[np.full(n - down_days, up), np.full(down_days, -up)]
    return steps(drift, n)


def shock(n: int, jump: float, days: int = 1, amp: float = 0.01) -> np.ndarray:
    """A zigzag range whose last `days` sessions each move by log `jump`."""
    drift = np.r_[np.zeros(n - days), np.full(days, jump)]
    return steps(drift, n, amp)


def panel(columns: dict[str, np.ndarray], start: date = START) -> PricePanel:
    """Aligned panel with high = low = close = open (true range = |close change|)."""
    symbols = tuple(columns)
    close = np.column_stack([columns[s] for s in symbols])
    dates = tuple(start + timedelta(days=i) for i in range(len(close)))
    return PricePanel(dates, symbols, close, close, close, close, np.ones_like(close))


def next_day(p: PricePanel) -> date:
    return p.dates[-1] + timedelta(days=1)


def pair_world(legs: tuple[str, str], n: int, kick: float) -> PricePanel:
    """log B = 0.001 k + 0.05 sin(k / 7); log A = log B + ln 5 + e_k with e_k seeded white
    noise of stdev 0.002 (a stationary spread), and the last session of A moved by `kick`:
    the OLS spread's last residual is ~kick against 0.002 noise, so |z| is near its
    maximum (n - 1) / sqrt(n) over the window."""
    k = np.arange(n)
    log_b = np.log(30.0) + 0.001 * k + 0.05 * np.sin(k / 7.0)
    log_a = log_b + np.log(5.0) + np.random.default_rng(5).normal(0.0, 0.002, n)
    log_a[-1] += kick
    return panel({legs[0]: np.exp(log_a), legs[1]: np.exp(log_b)})


def daily_series(name: str, end: date, values: np.ndarray) -> AuxSeries:
    """One value per calendar day ending the day before `end`, known the next day."""
    observed = np.array([end - timedelta(days=len(values) - i) for i in range(len(values))])
    observed = observed.astype("datetime64[D]")
    return AuxSeries(name, observed, observed + np.timedelta64(1, "D"), values)


def weekly_series(name: str, end: date, values: np.ndarray) -> AuxSeries:
    """One value a week, the last observed 7 days before `end`, known 3 days later."""
    observed = np.array([end - timedelta(days=7 * (len(values) - i)) for i in range(len(values))])
    observed = observed.astype("datetime64[D]")
    return AuxSeries(name, observed, observed + np.timedelta64(3, "D"), values)


@dataclass
class Case:
    strategy: str
    world: PricePanel
    expected: dict[str, SignalDirection]
    as_of: date | None = None
    aux: list[AuxSeries] = field(default_factory=list)
    params: dict[str, float] = field(default_factory=dict)
    id: str = ""


# 300 sessions; TURN rises 0.002/session then falls 0.002/session over the last 40; MIRROR is
# its negative drift. With closes at rows 0..299 and r_j the step into row j:
#   12-1 (rows 48..278): +212 x 0.002 - 19 x 0.002 = +0.386 (+-0.01 wiggle) -> TURN long
#   1m  (rows 279..299): -21 x 0.002 = -0.042                            -> TURN short
#   3m  (rows 237..299): +23 x 0.002 - 40 x 0.002 = -0.034               -> TURN short
#   6m  (rows 174..299): +86 x 0.002 - 40 x 0.002 = +0.092               -> TURN long
#   12m (rows 48..299):  +212 x 0.002 - 40 x 0.002 = +0.344              -> TURN long
TURNS = panel({"TURN": turn(300, 0.002, 40), "MIRROR": turn(300, -0.002, 40)})
# Steady trends: 0.002 a session with the +-1% wiggle.
TRENDS = panel({"UP": steps(0.002, 420), "DOWN": steps(-0.002, 420)})
# A flat zigzag ending in a 5% break (BREAKUP / BREAKDOWN) next to a pure zigzag (RANGE):
# the range's closes take exactly two values, so it never closes beyond a prior extreme.
BREAKS = panel(
    {"BREAKUP": shock(300, 0.05), "BREAKDOWN": shock(300, -0.05), "RANGE": steps(0.0, 300)}
)
# Same with a 10% one-day move (for bands that are two ATRs or two sigmas wide).
SPIKES = panel({"DIP": shock(200, -0.10), "POP": shock(200, 0.10), "RANGE": steps(0.0, 200)})
# Thirds of six funds ranked A < B < ... < F: the two best long, the two worst short.
SIX_DRIFTS = dict(zip("ABCDEF", (-3e-3, -2e-3, -1e-3, 1e-3, 2e-3, 3e-3), strict=True))
SIX = {"A": SHORT, "B": SHORT, "C": FLAT, "D": FLAT, "E": LONG, "F": LONG}
SEASONAL = panel({s: steps(0.0, 70) for s in ("UNG", "CORN", "SOYB", "WEAT", "UGA", "GLD")})


def _ranked_by_drift_per_session(drifts: dict[str, float], n: int) -> PricePanel:
    return panel({s: steps(d, n, amp=0.0) for s, d in drifts.items()})


CASES = [
    # tsmom 12-1 on the turn: +0.386 long; mirrored -0.386 short.
    Case("tsmom", TURNS, {"TURN": LONG, "MIRROR": SHORT}),
    Case("tsmom_1m", TURNS, {"TURN": SHORT, "MIRROR": LONG}),
    Case("tsmom_3m", TURNS, {"TURN": SHORT, "MIRROR": LONG}),
    Case("tsmom_6m", TURNS, {"TURN": LONG, "MIRROR": SHORT}),
    # votes 1m -, 3m -, 12m + -> mean -1/3 -> short (and long on the mirror).
    Case("tsmom_blend", TURNS, {"TURN": SHORT, "MIRROR": LONG}),
    # t = 0.002 / (0.01 / sqrt(126)) = 2.24 > 1; a pure zigzag over 126 steps has mean 0.
    Case(
        "tsmom_tstat",
        panel({"UP": steps(0.002, 300), "RANGE": steps(0.0, 300), "DOWN": steps(-0.002, 300)}),
        {"UP": LONG, "RANGE": FLAT, "DOWN": SHORT},
    ),
    # Thirds of six funds ranked by drift: k = 2 long (E, F), 2 short (A, B).
    Case(
        "xsmom_12_1",
        _ranked_by_drift_per_session(SIX_DRIFTS, 300),
        SIX,
    ),
    Case(
        "xsmom_6m",
        _ranked_by_drift_per_session(SIX_DRIFTS, 150),
        SIX,
    ),
    # Within precious: GLD up beats SLV down; within energy: BNO up beats USO down.
    Case(
        "xsmom_sector",
        _ranked_by_drift_per_session({"GLD": 1e-3, "SLV": -1e-3, "USO": -1e-3, "BNO": 1e-3}, 100),
        {"GLD": LONG, "SLV": SHORT, "USO": SHORT, "BNO": LONG},
    ),
    # On a rising series every shorter average sits above the longer one, and vice versa.
    Case("sma_cross", TRENDS, {"UP": LONG, "DOWN": SHORT}),
    Case("ema_cross", TRENDS, {"UP": LONG, "DOWN": SHORT}),
    # Above the 200-day SMA when rising: long; below when falling: flat (long-only rule).
    Case("sma200_filter", TRENDS, {"UP": LONG, "DOWN": FLAT}),
    # Ten 2% sessions after a flat range: EMA12 - EMA26 grows faster than its EMA9 -> > 0.
    Case(
        "macd",
        panel({"RALLY": shock(200, 0.02, days=10), "SLIDE": shock(200, -0.02, days=10)}),
        {"RALLY": LONG, "SLIDE": SHORT},
    ),
    # A 5% close above (below) the prior 20/55-session extreme; the range never breaks.
    Case("donchian_20", BREAKS, {"BREAKUP": LONG, "BREAKDOWN": SHORT, "RANGE": FLAT}),
    Case("donchian_55", BREAKS, {"BREAKUP": LONG, "BREAKDOWN": SHORT, "RANGE": FLAT}),
    # ATR ~1% (|zigzag| steps); +10%: EMA20 moves ~+0.95%, ATR10 -> 0.9 x 1% + 0.1 x 10% =
    # 1.9%, upper band ~ +0.95% + 3.8% = +4.8% < +10% -> long; mirrored -> short; the range
    # stays within ~0.5% of its EMA, inside +-2 ATR -> flat.
    Case("keltner", SPIKES, {"DIP": SHORT, "POP": LONG, "RANGE": FLAT}),
    # One 10% outlier among 20 closes: z ~ -4.2 (max (n-1)/sqrt(n) = 4.25) < -2 -> long;
    # a zigzag's last close has z = 0.5a / (0.5a sqrt(20/19)) = 0.97 -> flat.
    Case("bollinger_mr", SPIKES, {"DIP": LONG, "POP": SHORT, "RANGE": FLAT}),
    # Three -2% sessions: Wilder averages (a = 1/2) leave gains x 1/8 and losses ~1.75%:
    # RSI2 ~ 4.5 < 10 -> long. The zigzag alternates RSI2 between 33 and 67 -> flat.
    Case(
        "rsi2",
        panel(
            {
                "DIP": shock(100, -0.02, days=3),
                "POP": shock(100, 0.02, days=3),
                "RANGE": steps(0.0, 100),
            }
        ),
        {"DIP": LONG, "POP": SHORT, "RANGE": FLAT},
    ),
    # Ten -2% sessions: gains decay to 0.93^10 ~ 0.48 of ~0.5%, losses reach ~1.3%:
    # RSI14 ~ 16 < 30 -> long; the zigzag sits near 50 -> flat.
    Case(
        "rsi14",
        panel(
            {
                "DIP": shock(200, -0.02, days=10),
                "POP": shock(200, 0.02, days=10),
                "RANGE": steps(0.0, 200),
            }
        ),
        {"DIP": LONG, "POP": SHORT, "RANGE": FLAT},
    ),
    # 60-session log-price z: the 10% dip gives z ~ -7.6 -> position -clip(z/2) = +1;
    # the zigzag's |z| = sqrt(59/60) = 0.99 < entry 1 -> flat.
    Case("zscore_mr", SPIKES, {"DIP": LONG, "POP": SHORT, "RANGE": FLAT}),
    # Five-session returns rank A < B < ... < F: buy the two worst, sell the two best.
    Case(
        "st_reversal",
        _ranked_by_drift_per_session(SIX_DRIFTS, 30),
        {"A": LONG, "B": LONG, "C": FLAT, "D": FLAT, "E": SHORT, "F": SHORT},
    ),
    # Pairs: the first leg's last close is 5% rich (z ~ +7 > 2): short it, long the other.
    Case("pair_gld_iau", pair_world(("GLD", "IAU"), 80, 0.05), {"GLD": SHORT, "IAU": LONG}),
    Case("pair_gld_slv", pair_world(("GLD", "SLV"), 80, -0.05), {"GLD": LONG, "SLV": SHORT}),
    Case("pair_gld_gdx", pair_world(("GLD", "GDX"), 80, 0.05), {"GLD": SHORT, "GDX": LONG}),
    Case("pair_uso_bno", pair_world(("USO", "BNO"), 80, -0.05), {"USO": LONG, "BNO": SHORT}),
    # GLD - beta IAU is 0.002 white noise: Engle-Granger rejects a unit root (p ~ 0), so
    # the pair is selected and traded like pair_gld_iau: 5% rich GLD -> short GLD, long IAU.
    Case("coint_pairs", pair_world(("GLD", "IAU"), 504, 0.05), {"GLD": SHORT, "IAU": LONG}),
    # USO lost 0.002 x 63 = 12.6% against BNO over the window (< -2%): long BNO, short USO.
    Case(
        "carry_uso_bno",
        _ranked_by_drift_per_session({"USO": -2e-3, "BNO": 0.0}, 100),
        {"USO": SHORT, "BNO": LONG},
    ),
    # 12m returns: precious +0.3, 0, -0.3 (sector mean 0), energy +0.2, +0.1, 0 (mean 0.1):
    # relative +0.3, 0, -0.3, +0.1, 0, -0.1 -> long GLD, USO; short PPLT, UNG.
    Case(
        "carry_sector_roll",
        _ranked_by_drift_per_session(
            {
                "GLD": 0.3 / 252,
                "SLV": 0.0,
                "PPLT": -0.3 / 252,
                "USO": 0.2 / 252,
                "BNO": 0.1 / 252,
                "UNG": 0.0,
            },
            260,
        ),
        {"GLD": LONG, "SLV": FLAT, "PPLT": SHORT, "USO": LONG, "BNO": FLAT, "UNG": SHORT},
    ),
    Case("natgas_winter", SEASONAL, {"UNG": LONG}, as_of=date(2021, 9, 15), id="september"),
    Case("natgas_winter", SEASONAL, {"UNG": SHORT}, as_of=date(2021, 4, 15), id="april"),
    Case("natgas_winter", SEASONAL, {"UNG": FLAT}, as_of=date(2021, 12, 15), id="december"),
    Case(
        "grains_weather",
        SEASONAL,
        dict.fromkeys(("CORN", "SOYB", "WEAT"), LONG),
        as_of=date(2021, 6, 1),
    ),
    Case(
        "grains_weather",
        SEASONAL,
        dict.fromkeys(("CORN", "SOYB", "WEAT"), SHORT),
        as_of=date(2021, 9, 1),
    ),
    Case("gasoline_driving", SEASONAL, {"UGA": LONG}, as_of=date(2021, 3, 1)),
    Case("gasoline_driving", SEASONAL, {"UGA": FLAT}, as_of=date(2021, 7, 1)),
    Case("gold_autumn", SEASONAL, {"GLD": LONG}, as_of=date(2021, 9, 1)),
    Case("gold_autumn", SEASONAL, {"GLD": FLAT}, as_of=date(2021, 10, 1)),
    # Long-only overlays: both funds held (weights checked in the tests below).
    Case(
        "risk_parity",
        panel({"CALM": steps(0.0, 70, 0.01), "WILD": steps(0.0, 70, 0.02)}),
        {"CALM": LONG, "WILD": LONG},
    ),
    Case(
        "vol_managed",
        panel({"CALM": steps(0.0, 70, 0.01), "WILD": steps(0.0, 70, 0.02)}),
        {"CALM": LONG, "WILD": LONG},
    ),
    # 270 calm sessions then 25 at triple the wiggle: today's 21-day vol is above every day
    # of the past year (rank 251/252 >= 0.8) -> hold gold.
    Case(
        "safe_haven_switch",
        panel(
            {
                s: np.exp(
                    np.cumsum(
                        np.r_[np.full(270, 0.01), np.full(25, 0.03)]
                        * np.where(np.arange(295) % 2 == 0, 1, -1)
                    )
                )
                for s in ("GLD", "IAU", "USO")
            }
        ),
        {"GLD": LONG, "IAU": LONG},
        id="stress",
    ),
    # The wiggle halves for the last 30 sessions: today's vol is the year's lowest -> flat.
    Case(
        "safe_haven_switch",
        panel(
            {
                s: np.exp(
                    np.cumsum(
                        np.r_[np.full(265, 0.01), np.full(30, 0.005)]
                        * np.where(np.arange(295) % 2 == 0, 1, -1)
                    )
                )
                for s in ("GLD", "IAU", "USO")
            }
        ),
        {"GLD": FLAT, "IAU": FLAT},
        id="calm",
    ),
    # Vols 1% : 2% : 3% daily -> k = 1: long the calmest, short the wildest.
    Case(
        "low_vol_xs",
        panel(
            {
                "CALM": steps(0.0, 70, 0.01),
                "MID": steps(0.0, 70, 0.02),
                "WILD": steps(0.0, 70, 0.03),
            }
        ),
        {"CALM": LONG, "MID": FLAT, "WILD": SHORT},
    ),
]


def _macro_cases() -> list[Case]:
    world = panel({s: steps(0.0, 70) for s in ("GLD", "IAU", "DBC", "GSG")})
    day = next_day(world)
    rising = np.r_[2.0 + 0.01 * np.arange(100), -100.0]  # the -100 is known only on `day`
    falling_dollar = 100.0 * np.exp(-0.001 * np.arange(100))
    rising_dollar = 100.0 * np.exp(0.001 * np.arange(100))

    def known_on_day(series: AuxSeries) -> AuxSeries:
        # Shift knowledge so the last value becomes known on the decision day itself.
        known = series.known.copy()
        known[-1] = np.datetime64(day, "D")
        return AuxSeries(series.name, series.observed, known, series.values)

    return [
        # Real yield up 63 x 0.01 = +0.63 > 0.10 (the -100 is not yet known): short gold.
        Case(
            "gold_real_rates",
            world,
            {"GLD": SHORT, "IAU": SHORT},
            aux=[known_on_day(daily_series("DFII10", day, rising))],
        ),
        # Dollar log change -0.063 < -0.01: long gold.
        Case(
            "gold_dollar",
            world,
            {"GLD": LONG, "IAU": LONG},
            aux=[daily_series("DTWEXBGS", day, falling_dollar)],
        ),
        # Dollar log change +0.063 > 0.01: short broad commodities.
        Case(
            "commodity_dollar",
            world,
            {"DBC": SHORT, "GSG": SHORT},
            aux=[daily_series("DTWEXBGS", day, rising_dollar)],
        ),
    ]


def _cot_cases() -> list[Case]:
    world = panel({s: steps(0.0, 70) for s in ("GLD", "IAU")})
    day = next_day(world)
    crowded = np.r_[np.where(np.arange(155) % 2 == 0, 1.0, -1.0), 200.0]
    building = np.r_[np.zeros(20), 10.0 * np.arange(1, 6)]
    name = cot_series_name("GLD")
    return [
        # z of 200 against 155 values of +-1: ~ +12 > 1.5 -> fade: short gold (IAU maps to GLD).
        Case(
            "cot_contrarian",
            world,
            {"GLD": SHORT, "IAU": SHORT},
            aux=[weekly_series(name, day, crowded)],
        ),
        # Net long grew by 40 over the last 4 reports -> follow: long.
        Case(
            "cot_trend", world, {"GLD": LONG, "IAU": LONG}, aux=[weekly_series(name, day, building)]
        ),
    ]


# Two funds trend up, two down, identical wiggle: cross-sectional features are +1 for the
# risers and -1 for the fallers at every session, and next month's return is +0.042 vs
# -0.042, so ridge gets positive slopes, the logistic a positive log-odds slope, and both
# forecast the risers up.
ML_WORLD = panel(
    {
        "A": steps(0.002, 560),
        "B": steps(0.002, 560),
        "C": steps(-0.002, 560),
        "D": steps(-0.002, 560),
    }
)
ML_EXPECTED = {"A": LONG, "B": LONG, "C": SHORT, "D": SHORT}
ALL_CASES = [
    *CASES,
    *_macro_cases(),
    *_cot_cases(),
    *(Case(n, ML_WORLD, ML_EXPECTED) for n in ("ml_ridge", "ml_logit", "ml_ensemble")),
]


def _case_id(case: Case) -> str:
    return f"{case.strategy}-{case.id}" if case.id else case.strategy


@pytest.mark.parametrize("case", ALL_CASES, ids=_case_id)
def test_signal_matches_the_hand_worked_expectation(case: Case) -> None:
    strategy = create(case.strategy, **case.params)
    context = None
    if case.aux:
        context = StrategyContext({a.name: a for a in case.aux}, source="test", demo_fallback=False)
    as_of = case.as_of or next_day(case.world)
    signals = strategy.generate(case.world, as_of, context=context)
    assert {s.symbol: s.side for s in signals} == case.expected


def test_every_registered_strategy_has_a_hand_worked_case() -> None:
    assert {c.strategy for c in ALL_CASES} == set(STRATEGIES)


def test_blend_weight_is_a_third_of_the_vol_scaled_size() -> None:
    # votes -1/3: |weight| = size / 3 and confidence = 1/3.
    blend = {s.symbol: s for s in create("tsmom_blend").generate(TURNS, next_day(TURNS))}
    full = {s.symbol: s for s in create("tsmom_3m").generate(TURNS, next_day(TURNS))}
    assert blend["TURN"].weight == pytest.approx(full["TURN"].weight / 3)
    assert blend["TURN"].confidence == pytest.approx(1 / 3)


def test_risk_parity_gives_half_the_weight_to_twice_the_vol() -> None:
    world = panel({"CALM": steps(0.0, 70, 0.01), "WILD": steps(0.0, 70, 0.02)})
    weights = {s.symbol: s.weight for s in create("risk_parity").generate(world, next_day(world))}
    assert weights["CALM"] / weights["WILD"] == pytest.approx(2.0)
    # target 10% / (N = 2 x sigma), sigma = stdev of 63 alternating +-1% steps x sqrt(252)
    sigma = np.std(np.where(np.arange(63) % 2 == 0, 0.01, -0.01), ddof=1) * np.sqrt(252)
    assert weights["CALM"] == pytest.approx(0.10 / (2 * sigma))


def test_vol_managed_weight_falls_with_the_square_of_vol() -> None:
    world = panel({"CALM": steps(0.0, 70, 0.01), "WILD": steps(0.0, 70, 0.02)})
    weights = {s.symbol: s.weight for s in create("vol_managed").generate(world, next_day(world))}
    assert weights["CALM"] / weights["WILD"] == pytest.approx(4.0)


def test_pair_hedge_leg_is_beta_times_half_the_gross() -> None:
    world = pair_world(("GLD", "IAU"), 80, 0.05)
    signals = {s.symbol: s for s in create("pair_gld_iau").generate(world, next_day(world))}
    assert signals["GLD"].weight == pytest.approx(0.5)
    # log GLD = log IAU + const + noise -> OLS beta ~ 1 (the kick tilts it slightly).
    assert signals["IAU"].weight == pytest.approx(0.5, rel=0.05)


def test_a_strategy_missing_one_leg_of_its_pair_stays_silent() -> None:
    world = panel({"GLD": steps(0.0, 80), "SLV": steps(0.0, 80)})
    assert create("pair_gld_iau").generate(world, next_day(world)) == []


def test_nothing_before_the_warmup() -> None:
    short = panel({"UP": steps(0.002, 30)})
    for name in ("tsmom", "sma_cross", "ml_ridge", "coint_pairs"):
        assert create(name).generate(short, next_day(short)) == []
