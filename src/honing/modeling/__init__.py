"""Modeling: what one model is and how it is fitted, from the config's families to a scikit-learn
pipeline: the feature pipeline (:mod:`~honing.modeling.features`), the one training function
(:mod:`~honing.modeling.training`), decision rules (:mod:`~honing.modeling.decision`) and the
calibration maps behind them (:mod:`~honing.modeling.calibration`). The families themselves,
their estimators and their ONNX converters are :mod:`honing.models`."""
