"""The registry of every strategy by name; the terminal and `qgtm strategies` read it."""

from __future__ import annotations

from qgtm.engine.strategies import carry, cot, macro, meanrev, ml, overlays, pairs, seasonal, trend
from qgtm.engine.strategies.base import BaseStrategy
from qgtm.engine.strategies.tsmom import TimeSeriesMomentum

_CLASSES: tuple[type[BaseStrategy], ...] = (
    TimeSeriesMomentum,
    trend.Tsmom1M,
    trend.Tsmom3M,
    trend.Tsmom6M,
    trend.TsmomBlend,
    trend.TsmomTStat,
    trend.XsMomentum12M,
    trend.XsMomentum6M,
    trend.XsMomentumSector,
    trend.SmaCross,
    trend.EmaCross,
    trend.Sma200Filter,
    trend.Macd,
    trend.Donchian20,
    trend.Donchian55,
    trend.KeltnerBreakout,
    meanrev.BollingerReversion,
    meanrev.Rsi2,
    meanrev.Rsi14,
    meanrev.ZScoreReversion,
    meanrev.ShortTermReversal,
    pairs.PairGldIau,
    pairs.PairGldSlv,
    pairs.PairGldGdx,
    pairs.PairUsoBno,
    pairs.CointegrationPairs,
    carry.CarryUsoBno,
    carry.CarrySectorRoll,
    seasonal.NatgasWinter,
    seasonal.GrainsWeather,
    seasonal.GasolineDriving,
    seasonal.GoldAutumn,
    overlays.RiskParity,
    overlays.VolManaged,
    overlays.SafeHavenSwitch,
    overlays.LowVolatility,
    macro.GoldRealRates,
    macro.GoldDollar,
    macro.CommodityDollar,
    cot.CotContrarian,
    cot.CotTrend,
    ml.RidgeForecast,
    ml.LogisticForecast,
    ml.MlEnsemble,
)

STRATEGIES: dict[str, type[BaseStrategy]] = {cls.name: cls for cls in _CLASSES}
if len(STRATEGIES) != len(_CLASSES):  # two classes claiming one name is a bug
    raise RuntimeError("duplicate strategy names in the registry")


class UnknownStrategyError(KeyError):
    """A strategy name that is not registered."""

    def __str__(self) -> str:
        return f"unknown strategy {self.args[0]!r}; known: {', '.join(sorted(STRATEGIES))}"


def create(name: str, **params: float) -> BaseStrategy:
    """Instantiate the registered strategy `name` with parameter overrides."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise UnknownStrategyError(name) from None
    return cls(**params)
