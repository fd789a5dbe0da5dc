"""The training loop: builds model + optimizer under a strategy, resumes, trains, checkpoints.

The trainer depends only on the model interface of docs/DESIGN.md (``model_fn(cfg)`` returns
a built ``keras.Model`` with ``compute_losses(batch, training=True) -> dict`` including
``"total"``) and on ``dataset_fn(global_batch_size) -> tf.data.Dataset`` of batch dicts with
fixed shapes (``drop_remainder``), so one ``tf.function`` trace serves the whole run.

Resume and data position: the checkpoint stores the step counter. Before the dataset is built
the TensorFlow global seed is reset to ``seed``, so the (deterministically seeded) pipeline
produces the same sequence of batches in every run; a resumed run skips the first ``step``
batches (``Dataset.skip``), i.e. it continues exactly where the checkpoint was taken, at the
cost of reading (not training on) those batches once. The ``tf.data`` iterator itself is not
checkpointed (its shuffle buffers would bloat every checkpoint).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from typing import Callable, Dict, List, Optional, Sequence

import keras
import tensorflow as tf

from maskrcnn_body.config.train_dir import TrainDir
from maskrcnn_body.training import distribute, optimizers
from maskrcnn_body.training.checkpoints import Checkpointer, restore_partial
from maskrcnn_body.training.faults import BadStepCounter, StopSignal, TrainingStepError
from maskrcnn_body.training.step import make_train_step
from maskrcnn_body.training.summaries import Summaries
from maskrcnn_body.utils.progress import ProgressBar

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Hook:
    """Calls ``fn(step)`` every ``every`` steps (0 = never) and once after the last step
    when ``at_end``; only on the chief when ``chief_only``."""

    every: int
    fn: Callable[[int], None]
    chief_only: bool = True
    at_end: bool = False


@dataclasses.dataclass
class TrainResult:
    step: int
    skipped_steps: int
    stopped_by: str  # "max_steps" | "SIGINT" | "SIGTERM"
    checkpoint: Optional[str]  # last checkpoint written or restored (chief), else None
    steps_per_sec: float
    logs: Dict[str, float]


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How one training run executes (what it learns is the :class:`~maskrcnn_body.config.Config`).

    Attributes:
      strategy: a ``tf.distribute.Strategy`` (None: no distribution).
      seed: initialisation, data order and augmentation seed.
      precision: ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.
      restore_from: checkpoint (prefix or directory) to partially restore from when ``train_dir`` has no
        checkpoint yet.
      progress: show the progress bar (chief only).
    """

    strategy: Optional[tf.distribute.Strategy] = None
    seed: int = 0
    precision: str = "float32"
    restore_from: Optional[str] = None
    progress: bool = True


class Trainer:
    """Owns model, optimizer, checkpoints and summaries for one ``train_dir``.

    Args:
      cfg: :class:`maskrcnn_body.config.Config` (``cfg.train`` drives the optimizer, schedule,
        clipping, checkpoint/log intervals and the bad-step limit).
      model_fn: ``cfg -> keras.Model`` with ``compute_losses``; called inside the strategy scope.
      dataset_fn: ``global_batch_size -> tf.data.Dataset`` of training batches.
      train_dir: checkpoints (``ckpt-<step>``), ``config.json`` and ``train/`` summaries
        (:class:`~maskrcnn_body.config.train_dir.TrainDir`, available as ``self.dir``).
      options: :class:`RunOptions` (strategy, seed, precision, partial restore, progress bar).
      hooks: :class:`Hook` s run between steps (evaluation, drawings: the workflow layer builds them;
        the loop never imports evaluation).
      corrupt_count: optional ``() -> int`` (records skipped as corrupt so far), logged.
    """

    def __init__(
        self,
        cfg,
        model_fn,
        dataset_fn,
        train_dir: str,
        options: RunOptions = RunOptions(),
        hooks: Sequence[Hook] = (),
        corrupt_count: Optional[Callable[[], int]] = None,
    ):
        self.cfg = cfg
        self.dataset_fn = dataset_fn
        self.train_dir = train_dir
        self.dir = TrainDir(train_dir)
        self.strategy = options.strategy or tf.distribute.get_strategy()
        seed, precision = options.seed, options.precision
        self.seed = seed
        self.restore_from = options.restore_from
        self.hooks: List[Hook] = list(hooks)
        self.corrupt_count = corrupt_count
        self.show_progress = options.progress
        self.is_chief = distribute.is_chief(self.strategy)
        self.global_batch = cfg.train.batch_size
        distribute.per_replica_batch(self.global_batch, self.strategy)  # validates divisibility
        optimizers.set_precision_policy(precision)
        keras.utils.set_random_seed(seed)
        with self.strategy.scope():
            self.model = model_fn(cfg)
            self.optimizer = optimizers.build_optimizer(cfg.train, precision)
            self.optimizer.build(self.model.trainable_variables)
        self.checkpointer = Checkpointer(
            train_dir, self.model, self.optimizer, cfg.train.keep_checkpoints, self.is_chief, distribute.task_info()[1]
        )
        self.summaries = Summaries(self.dir.summaries_dir, enabled=self.is_chief)
        self.step = 0
        self._restored: Optional[tuple] = None

    # ------------------------------------------------------------------ set-up
    def _say(self, msg: str) -> None:
        if self.is_chief:
            print(msg, flush=True)

    def restore(self) -> Optional[str]:
        """Resumes from ``train_dir`` or partially restores ``restore_from``; sets ``self.step``.

        Returns the checkpoint resumed from (None for a fresh or partially restored start).
        Idempotent: :meth:`train` calls it unless it was called before.
        """
        if self._restored is not None:
            return self._restored[0]
        self._restored = (None,)
        restored = self.checkpointer.restore_latest()
        if restored is not None:
            path, self.step = restored
            self._restored = (path,)
            self._say(f"resumed from {path} at step {self.step}")
            return path
        if self.restore_from:
            report = restore_partial(self.model, self.restore_from)
            self._say(report.summary())
        return None

    def _write_config(self) -> None:
        if not self.is_chief:
            return
        self.dir.write_config(self.cfg)

    def make_iterator(self, start_step: int):
        """Distributed iterator over the training batches, positioned at ``start_step``."""
        tf.random.set_seed(self.seed)
        ds = self.dataset_fn(self.global_batch).repeat()
        if start_step:
            ds = ds.skip(start_step)
        return iter(self.strategy.experimental_distribute_dataset(ds))

    def _save(self, reason: str) -> Optional[str]:
        path = self.checkpointer.save(self.step)
        if path:
            log.info("saved %s (%s)", path, reason)
        return path

    def _run_hooks(self, final: bool, last_step: bool = False) -> None:
        """``final``: after the loop (the ``at_end`` hooks); ``last_step``: the loop's last step, where the
        ``at_end`` hooks wait for the final call instead of running twice."""
        for h in self.hooks:
            periodic = bool(h.every) and self.step % h.every == 0 and not (h.at_end and last_step)
            due = h.at_end if final else periodic
            if due and (self.is_chief or not h.chief_only):
                h.fn(self.step)

    # ------------------------------------------------------------------ loop
    def train(self, max_steps: Optional[int] = None) -> TrainResult:
        """Trains until ``max_steps`` (default ``cfg.train.max_steps``) or a stop signal.

        Raises :class:`~maskrcnn_body.training.faults.TrainingDivergedError` after
        ``cfg.train.max_bad_steps`` consecutive non-finite steps (no checkpoint is written for
        the bad state; the last good one stays the newest), and
        :class:`~maskrcnn_body.training.faults.TrainingStepError` when a step or the input
        pipeline raises inside TensorFlow (the message names the step and the batch's images).
        """
        tc = self.cfg.train
        max_steps = tc.max_steps if max_steps is None else max_steps
        checkpoint = self.restore()
        self._write_config()
        iterator = self.make_iterator(self.step)
        step_fn = make_train_step(self.model, self.optimizer, self.strategy, tc.clip_norm)
        bad = BadStepCounter(tc.max_bad_steps)
        bar = ProgressBar(max_steps, self.step) if (self.show_progress and self.is_chief) else None
        logs: Dict[str, float] = {}
        stopped_by, saved_at = "max_steps", None
        start_step, t0 = self.step, time.perf_counter()
        with StopSignal() as stop:
            while self.step < max_steps:
                out, finite = self._run_step(step_fn, iterator, checkpoint)
                self.step += 1
                bad.update(finite, self.step)
                if self.step % max(tc.log_every, 1) == 0 or self.step == max_steps:
                    logs = self._log(out, bad, bar)
                if tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
                    checkpoint, saved_at = self._save("periodic") or checkpoint, self.step
                self._run_hooks(final=False, last_step=self.step == max_steps)
                if stop.requested:
                    stopped_by = signal.Signals(stop.received).name
                    break
            if saved_at != self.step:
                checkpoint = self._save(stopped_by) or checkpoint
        if bar:
            bar.close()
        if stopped_by == "max_steps":
            self._run_hooks(final=True)
        self.summaries.flush()
        elapsed = time.perf_counter() - t0
        rate = (self.step - start_step) / elapsed if elapsed > 0 else 0.0
        if stopped_by != "max_steps":
            self._say(f"stopped by {stopped_by} at step {self.step}; checkpoint {checkpoint}")
        return TrainResult(self.step, bad.total, stopped_by, checkpoint if self.is_chief else None, rate, logs)

    def _run_step(self, step_fn, iterator, checkpoint: Optional[str]):
        """Reads the next batch and runs ``step_fn`` on it: ``(outputs, applied)``. A TensorFlow
        error becomes a :class:`TrainingStepError` naming the step and the batch's images."""
        step = self.step + 1
        try:
            batch = next(iterator)
        except tf.errors.OpError as e:
            raise TrainingStepError(step, [], e, checkpoint, self._write_error_log(e), reading=True) from e
        try:
            out = step_fn(batch)
            return out, bool(out["finite"].numpy() > 0.5)
        except tf.errors.OpError as e:
            raise TrainingStepError(step, self._source_ids(batch), e, checkpoint, self._write_error_log(e)) from e

    def _source_ids(self, batch) -> List[str]:
        ids = batch.get("source_id") if isinstance(batch, dict) else None
        if ids is None:
            return []
        return [
            s.decode(errors="replace")
            for t in self.strategy.experimental_local_results(ids)
            for s in t.numpy().reshape(-1)
        ]

    def _write_error_log(self, error: Exception) -> Optional[str]:
        """Writes TensorFlow's whole error message to ``train_dir/step_error.log`` (chief)."""
        if not self.is_chief:
            return None
        path = self.dir.step_error_log
        try:
            os.makedirs(self.train_dir, exist_ok=True)
            with open(path, "w") as f:
                f.write(f"step {self.step + 1}: {type(error).__name__}\n{error}\n")
        except OSError:
            return None
        return path

    def _log(self, out, bad: BadStepCounter, bar: Optional[ProgressBar]) -> Dict[str, float]:
        values = {k: float(v.numpy()) for k, v in out.items() if k not in ("finite",)}
        losses = {k: v for k, v in values.items() if k != "grad_norm"}
        extra = {
            "learning_rate": optimizers.current_learning_rate(self.optimizer),
            "grad_norm": values["grad_norm"],
            "skipped_steps": float(bad.total),
        }
        if optimizers.is_loss_scaled(self.optimizer):
            extra["loss_scale"] = float(self.optimizer.dynamic_scale.numpy())
        if self.corrupt_count is not None:
            extra["corrupt_records"] = float(self.corrupt_count())
        self.summaries.scalars(self.step, losses, prefix="loss/")
        self.summaries.scalars(self.step, extra)
        if bar is not None:
            shown = {"loss": losses.get("total", float("nan"))}
            shown.update((k, v) for k, v in losses.items() if k != "total")
            shown["lr"] = extra["learning_rate"]
            if bad.total:
                shown["skipped"] = bad.total
            if extra.get("corrupt_records"):
                shown["corrupt"] = extra["corrupt_records"]
            bar.update(self.step, shown)
        return {**losses, **extra}
