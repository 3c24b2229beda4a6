"""A PyTorch multilayer perceptron with the scikit-learn estimator contract.

``fit`` returns ``self`` and learned state lives in attributes ending in ``_``, so the MLP sits
in the same ``Pipeline`` (features + model), the same CV and the same Ray Tune trainable as the
scikit-learn families. Regularization: dropout, batch norm, weight decay (L2), early stopping on
a validation split. Optimizers: SGD with momentum or Nesterov, Adam, AdamW, RMSprop, Adagrad.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
ACTIVATIONS = ("relu", "tanh", "gelu")


class TorchMLPBase(BaseEstimator):
    """The MLP, its training loop and regularization; the subclasses set the output layer,
    the loss and the target encoding. Trained with mini-batches on the CPU (or CUDA when
    ``device="auto"`` finds one, with mixed precision there)."""

    def __init__(
        self,
        hidden_layers: int = 2,
        width: int = 64,
        activation: str = "relu",
        dropout: float = 0.1,
        batch_norm: bool = False,
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        batch_size: int = 128,
        max_epochs: int = 50,
        early_stopping: bool = True,
        validation_fraction: float = 0.15,
        patience: int = 5,
        lr_schedule: str = "none",
        device: str = "cpu",
        warm_start: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.hidden_layers = hidden_layers
        self.width = width
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.device = device
        self.warm_start = warm_start
        self.random_state = random_state

    # -- building blocks -------------------------------------------------------------------
    def _network(self, n_in: int, n_out: int) -> Any:
        import torch.nn as tnn

        act = {"relu": tnn.ReLU, "tanh": tnn.Tanh, "gelu": tnn.GELU}[self.activation]
        layers: list[Any] = []
        width_in = n_in
        for _ in range(int(self.hidden_layers)):
            layers.append(tnn.Linear(width_in, int(self.width)))
            if self.batch_norm:
                layers.append(tnn.BatchNorm1d(int(self.width)))
            layers += [act(), tnn.Dropout(float(self.dropout))]
            width_in = int(self.width)
        layers.append(tnn.Linear(width_in, n_out))
        return tnn.Sequential(*layers)

    def _optimizer(self, params: Any) -> Any:
        import torch

        lr, wd = float(self.learning_rate), float(self.weight_decay)
        if self.optimizer in ("sgd", "nesterov"):
            return torch.optim.SGD(
                params,
                lr=lr,
                momentum=float(self.momentum),
                nesterov=self.optimizer == "nesterov",
                weight_decay=wd,
            )
        cls = {
            "adam": torch.optim.Adam,
            "adamw": torch.optim.AdamW,
            "rmsprop": torch.optim.RMSprop,
            "adagrad": torch.optim.Adagrad,
        }[self.optimizer]
        return cls(params, lr=lr, weight_decay=wd)

    def _check_params(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.lr_schedule not in ("none", "cosine", "step"):
            raise ValueError(f"lr_schedule must be none, cosine or step, got {self.lr_schedule!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    # -- scikit-learn API ------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> Any:
        """Train for ``max_epochs`` epochs (fewer when early stopping triggers). With
        ``warm_start=True`` a second ``fit`` on the same data continues where the first one
        stopped, for ``max_epochs`` more: schedulers use this to grow the epoch budget."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32, reset=not self._warm())
        if not self._warm():
            self._start(X, y)
        self._train_epochs(int(self.max_epochs))
        net = self._state["net"]
        best = self._state["best_state"]
        self.model_ = copy.deepcopy(net).to("cpu").eval()
        if best is not None:
            self.model_.load_state_dict(best)
        self.n_epochs_ = len(self.loss_curve_)
        if not self.warm_start:
            self._state = None
        return self

    def _warm(self) -> bool:
        return bool(self.warm_start) and getattr(self, "_state", None) is not None

    def _start(self, X: np.ndarray, y: np.ndarray) -> None:
        import torch

        y_idx = self._encode_target(y)
        seed = 0 if self.random_state is None else int(self.random_state)
        torch.manual_seed(seed)
        device = torch.device(
            "cuda" if self.device == "auto" and torch.cuda.is_available() else "cpu"
        )
        X_val = y_val = None
        if self.early_stopping and len(X) >= 20:
            stratify = y_idx if y_idx.dtype == np.int64 and np.bincount(y_idx).min() >= 2 else None
            X, X_val, y_idx, y_val = train_test_split(
                X,
                y_idx,
                test_size=float(self.validation_fraction),
                random_state=seed,
                stratify=stratify,
            )
        net = self._network(X.shape[1], self._n_outputs()).to(device)
        opt = self._optimizer(net.parameters())
        sched = None
        if self.lr_schedule == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(self.max_epochs))
        elif self.lr_schedule == "step":
            sched = torch.optim.lr_scheduler.StepLR(
                opt, step_size=max(1, self.max_epochs // 3), gamma=0.3
            )
        self.loss_curve_: list[float] = []
        self.validation_curve_: list[float] = []
        self._state = {
            "device": device,
            "net": net,
            "opt": opt,
            "sched": sched,
            "scaler": torch.amp.GradScaler("cuda", enabled=device.type == "cuda"),
            "X": torch.from_numpy(X).to(device),
            "y": torch.from_numpy(y_idx).to(device),
            "X_val": None if X_val is None else torch.from_numpy(X_val).to(device),
            "y_val": None if y_val is None else torch.from_numpy(y_val).to(device),
            "gen": torch.Generator().manual_seed(seed),
            "best_loss": np.inf,
            "best_state": None,
            "stale": 0,
            "stopped": False,
        }

    def _train_epochs(self, epochs: int) -> None:
        import torch

        st = self._state
        net, opt, device = st["net"], st["opt"], st["device"]
        use_amp = device.type == "cuda"
        loss_fn = self._loss()
        Xt, yt = st["X"], st["y"]
        for _epoch in range(epochs):
            if st["stopped"]:
                break
            net.train()
            order = torch.randperm(len(Xt), generator=st["gen"]).to(device)
            total = 0.0
            for start in range(0, len(Xt), int(self.batch_size)):
                idx = order[start : start + int(self.batch_size)]
                if len(idx) < 2 and self.batch_norm:
                    continue
                opt.zero_grad()
                with torch.autocast(device.type, enabled=use_amp):
                    loss = loss_fn(net(Xt[idx]), yt[idx])
                st["scaler"].scale(loss).backward()
                st["scaler"].step(opt)
                st["scaler"].update()
                total += float(loss.detach()) * len(idx)
            self.loss_curve_.append(total / len(Xt))
            if st["sched"] is not None:
                st["sched"].step()
            if st["X_val"] is not None:
                net.eval()
                with torch.no_grad():
                    v = float(loss_fn(net(st["X_val"]), st["y_val"]))
                self.validation_curve_.append(v)
                if v < st["best_loss"] - 1e-5:
                    st["best_loss"], st["best_state"], st["stale"] = (
                        v,
                        copy.deepcopy(net.state_dict()),
                        0,
                    )
                else:
                    st["stale"] += 1
                    if st["stale"] >= int(self.patience):
                        st["stopped"] = True

    def __getstate__(self) -> dict[str, Any]:
        """The fitted model as plain data: the network's weights as numpy arrays (its state
        dict) and its input/output sizes, so skops stores it without pickling any torch
        object, and loading it runs no code. Training buffers are not part of it."""
        state = dict(super().__getstate__())
        state.pop("_state", None)
        net = state.pop("model_", None)
        if net is not None:
            linears = [m for m in net if hasattr(m, "in_features")]
            state["network_shape_"] = [int(linears[0].in_features), int(linears[-1].out_features)]
            state["network_weights_"] = {
                k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()
            }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        shape = state.pop("network_shape_", None)
        weights = state.pop("network_weights_", None)
        super().__setstate__(state)
        if shape is not None and weights is not None:
            import torch

            net = self._network(int(shape[0]), int(shape[1]))
            net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
            self.model_ = net.eval()

    def n_parameters(self) -> int:
        check_is_fitted(self, "model_")
        return int(sum(p.numel() for p in self.model_.parameters()))


class TorchMLPClassifier(ClassifierMixin, TorchMLPBase):
    """Binary or multiclass MLP classifier (softmax outputs, cross-entropy)."""

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        self.classes_ = unique_labels(y)
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _loss(self) -> Any:
        import torch

        return torch.nn.CrossEntropyLoss()

    def predict_proba(self, X: Any) -> np.ndarray:
        import torch

        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        with torch.no_grad():
            logits = self.model_(torch.from_numpy(X))
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class TorchMLPRegressor(RegressorMixin, TorchMLPBase):
    """MLP regressor: one linear output on the standardized target, mean squared error."""

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        self.target_mean_ = float(y.mean())
        self.target_scale_ = float(y.std()) or 1.0
        return ((y - self.target_mean_) / self.target_scale_).astype(np.float32)[:, None]

    def _n_outputs(self) -> int:
        return 1

    def _loss(self) -> Any:
        import torch

        return torch.nn.MSELoss()

    def predict(self, X: Any) -> np.ndarray:
        import torch

        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        with torch.no_grad():
            out = self.model_(torch.from_numpy(X)).numpy()[:, 0]
        return out.astype(np.float64) * self.target_scale_ + self.target_mean_
