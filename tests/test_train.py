"""grader.child.train: learning, reproducibility, and every model the trainer has never seen."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.child.config import TrainConfig
from grader.child.protocol import History
from grader.child.runtime import ModelError
from grader.child.plan import MIN_BATCHES, MIN_EVALUATED, RunPlan, plan_run
from grader.child.train import predict_logits, scheduled_lrs, train
from grader.config import DataConfig
from grader.data import load_cifar10, training_data
from grader.typed import from_plain, to_plain
from reference_models import LeNet5

QUICK = TrainConfig(optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="constant", batch_size=64, epochs=1)


@pytest.fixture(scope="module")
def data(synthetic_data):
    return training_data(load_cifar10(synthetic_data), DataConfig(train_size=1_600, val_size=400))


@pytest.fixture(scope="module")
def tiny(data):
    """A few hundred images: enough to exercise the loop, cheap enough for many tests."""
    return replace(data, train_images=data.train_images[:300], train_labels=data.train_labels[:300])


def _epochs(h: History) -> list[tuple]:
    return [(e.train_loss, e.val_loss, e.val_accuracy, e.lr) for e in h.epochs]


def test_lenet_learns_synthetic_data_in_one_epoch(data):
    h = train(LeNet5, data, QUICK)
    assert h.status == "ok" and h.selected_epoch == 1 and len(h.epochs) == 1
    assert h.test_accuracy > 0.5  # chance is 0.1
    assert h.params == 62_006 and h.flops_per_image > 1_000_000 and h.peak_memory_bytes > 0
    assert h.device == "cpu" and h.precision == "fp32" and h.channels_last and h.notes == ()


def test_history_is_json_serialisable_and_round_trips(tiny):
    h = train(LeNet5, tiny, QUICK)
    d = json.loads(json.dumps(to_plain(h), allow_nan=False))
    assert set(d["epochs"][0]) == {"epoch", "train_loss", "val_loss", "val_accuracy", "seconds", "lr"}
    assert d["config"]["optimizer"] == "adam" and d["torch_version"] == torch.__version__
    assert from_plain(History, d, "history") == h


def test_same_seed_deterministic_runs_give_identical_histories(tiny):
    cfg = TrainConfig(optimizer="sgd", lr=0.05, nesterov=True, schedule="onecycle", batch_size=64, epochs=2,
                      augment="crop_flip", seed=3, deterministic=True)
    a, b = train(LeNet5, tiny, cfg), train(LeNet5, tiny, cfg)
    assert _epochs(a) == _epochs(b) and a.test_accuracy == b.test_accuracy
    c = train(LeNet5, tiny, TrainConfig(**{**cfg.__dict__, "seed": 4}))
    assert _epochs(c) != _epochs(a)


def test_forward_returning_a_tuple_uses_its_first_element(tiny):
    class WithAux(LeNet5):
        def forward(self, x):
            logits = super().forward(x)
            return logits, logits.detach() * 0  # e.g. an auxiliary head or features

    h = train(WithAux, tiny, QUICK)
    assert h.status == "ok" and "forward returns a tuple; its first tensor (output[0]) is used as the logits" in h.notes
    m = WithAux()
    assert predict_logits(m, tiny.val_images[:7], mean=tiny.mean, std=tiny.std).shape == (7, 10)


def test_lazy_modules_are_initialized_before_the_optimizer(tiny):
    def lazy_net():
        return nn.Sequential(nn.LazyConv2d(8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.LazyLinear(32), nn.ReLU(), nn.LazyLinear(10))

    h = train(lazy_net, tiny, QUICK)
    assert h.status == "ok" and h.params == (3 * 9 * 8 + 8) + (8 * 15 * 15 * 32 + 32) + (32 * 10 + 10)
    assert h.epochs[0].train_loss < 2.3


def test_batchnorm_never_sees_a_training_batch_of_one(tiny):
    seen = []

    class BNNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.fc = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Linear(8, 10)

        def forward(self, x):
            if self.training:
                seen.append(len(x))
            return self.fc(F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1).flatten(1))

    data = type(tiny)(**{**tiny.__dict__, "train_images": tiny.train_images[:129], "train_labels": tiny.train_labels[:129]})
    h = train(BNNet, data, QUICK)  # 129 = 2 x 64 + 1
    assert h.status == "ok" and min(seen) > 1 and any("held 1 image and was dropped" in n for n in h.notes)


def test_diverging_model_stops_and_is_reported(tiny):
    h = train(LeNet5, tiny, TrainConfig(optimizer="sgd", lr=1e6, momentum=0.9, schedule="constant", epochs=3))
    assert h.status == "diverged" and "NaN or infinite" in h.message and "stopped" in h.message
    assert len(h.epochs) < 3
    json.dumps(to_plain(h), allow_nan=False)  # still JSON-safe


def test_nan_from_the_first_step_leaves_no_selected_epoch(tiny):
    class Broken(LeNet5):
        def forward(self, x):
            return super().forward(x) * float("nan") if self.training else super().forward(x)

    h = train(Broken, tiny, QUICK)
    assert h.status == "diverged" and "epoch 1, step 1" in h.message
    assert h.selected_epoch is None and h.test_accuracy is None


def test_view_that_breaks_under_channels_last_falls_back(tiny):
    class Tutorial(LeNet5):  # the old tutorial's x.view(-1, 16 * 5 * 5)
        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = x.view(-1, 16 * 5 * 5)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    h = train(Tutorial, tiny, QUICK)
    assert h.status == "ok" and not h.channels_last and any("channels_last" in n for n in h.notes)


def test_wrong_output_shape_is_a_model_error(tiny):
    with pytest.raises(ModelError, match=r"maps \(2, 3, 32, 32\) images to \(2, 5\); it must return \(2, 10\) logits"):
        train(lambda: nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 5)), tiny, QUICK)


def test_non_tensor_output_is_a_model_error(tiny):
    class Dict(LeNet5):
        def forward(self, x):
            return {"logits": super().forward(x)}

    with pytest.raises(ModelError, match=r"forward returned a dict; it must return the logits tensor of shape \(N, 10\)"):
        train(Dict, tiny, QUICK)


@pytest.mark.parametrize("optimizer,schedule", [("sgd", "cosine"), ("adamw", "onecycle"), ("adam", "constant")])
def test_optimizers_and_schedules(tiny, optimizer, schedule):
    cfg = TrainConfig(optimizer=optimizer, lr=1e-3 if optimizer != "sgd" else 0.02, schedule=schedule, epochs=2,
                      select="last", batch_size=100)
    h = train(LeNet5, tiny, cfg)
    assert h.status == "ok" and h.selected_epoch == 2
    if schedule != "constant":
        assert h.epochs[-1].lr < cfg.lr / 10  # annealed by the end


def test_without_labels_every_epochs_logits_go_to_whoever_holds_them(tiny):
    """The sandbox's shape: the trainer sees no val/test labels; it hands over logits and scores nothing."""
    calls = []
    config = replace(QUICK, epochs=2)
    h = train(LeNet5, tiny.without_labels(), config, on_logits=lambda split, logits: calls.append((split, tuple(logits.shape))))
    assert calls == [("val", (400, 10)), ("test", (500, 10))] * 2
    assert [(e.val_loss, e.val_accuracy) for e in h.epochs] == [(None, None), (None, None)]
    assert h.selected_epoch is None and h.test_accuracy is None and h.status == "ok"
    with pytest.raises(ValueError, match="no val labels here"):
        train(LeNet5, tiny.without_labels(), QUICK)


def test_best_val_selection_restores_the_best_weights(tiny):
    """Validation labels are rigged so that epoch 1 is the best: the model must end with its weights."""
    config = TrainConfig(optimizer="adam", lr=3e-3, schedule="constant", epochs=3, deterministic=True)
    start = LeNet5()

    def predictions(model):
        return predict_logits(model, tiny.val_images, mean=tiny.mean, std=tiny.std).argmax(1)

    probe = copy.deepcopy(start)  # epoch 1 alone: the same steps as the first epoch of the real run
    train(probe, tiny, replace(config, epochs=1))
    rigged = replace(tiny, val_labels=predictions(probe))  # epoch 1 predicts the validation set perfectly
    model, weights, seen = copy.deepcopy(start), [], []

    def snapshot(_record):
        weights.append(copy.deepcopy(model.state_dict()))
        seen.append(predictions(model))

    h = train(model, rigged, config, on_epoch=snapshot)
    assert h.epochs[0].val_accuracy == 1.0 and h.epochs[-1].val_accuracy < 1.0 and h.selected_epoch == 1
    assert torch.equal(predictions(model), seen[0]) and not torch.equal(predictions(model), seen[-1])
    assert all(torch.equal(model.state_dict()[k], weights[0][k]) for k in weights[0])


def test_the_plan_gives_a_model_over_the_flop_allowance_fewer_images_and_says_why():
    config = TrainConfig(epochs=2, batch_size=64, max_flops=3e12)
    resnet20 = plan_run(config, 5_000, 1_000, 81_102_080)  # 2.76 TFLOP: fits
    assert (resnet20.train_images, resnet20.eval_images, resnet20.cut, resnet20.over) == (5_000, 1_000, "", False)
    assert resnet20.flops == pytest.approx(2 * 81_102_080 * (3 * 5_000 + 2 * 1_000))
    big = plan_run(config, 5_000, 1_000, 300_000_000)  # 10.2 TFLOP for the budget's images
    assert big.eval_images == 1_000 and big.train_images == 960  # 1.2 TFLOP scoring, 1.8 left: 15 whole batches
    assert big.flops <= 3e12 and not big.over
    assert big.cut == ("at 300 MFLOPs per image it would need 10.2 TFLOP for the budget's 5,000 training and 1,000 "
                       "scored images, over its 3 TFLOP allowance: it trained on 960 and was scored on 1,000")
    huge = plan_run(config, 5_000, 1_000, 12_000_000_000)  # the rubric's largest model: the minimums, over the allowance
    assert (huge.train_images, huge.eval_images, huge.over) == (MIN_BATCHES * 64, MIN_EVALUATED, True)
    assert plan_run(config, 5_000, 1_000, None) == RunPlan(5_000, 1_000, 0.0)  # unknown FLOPs: the safety net alone
    assert plan_run(replace(config, max_flops=0), 5_000, 1_000, 12_000_000_000).cut == ""  # no allowance: the grading budget


def test_a_model_over_the_allowance_trains_every_epoch_on_the_images_it_buys(tiny):
    lenet = 1_303_440  # LeNet-5's forward FLOPs per image, as the counter counts them
    # The plan counts both splits at the larger one's 500 images: scoring gets half the allowance (404 a
    # split, so all 400 validation images), training the rest in whole batches of 16 (256 images).
    config = replace(QUICK, epochs=2, batch_size=16, schedule="cosine", max_flops=2 * lenet * (3 * 272 + 2 * 400))
    h = train(LeNet5, tiny, config)
    assert h.budget_cut == "cost" and h.stopped_early and len(h.epochs) == 2 and h.selected_epoch is not None
    assert h.val_images == 400
    assert "planned by its cost: at 1 MFLOPs per image it would need" in " ".join(h.notes)
    assert "it trained on 256 and was scored on 404" in " ".join(h.notes)
    assert h.epochs[-1].lr == pytest.approx(scheduled_lrs(config, 256)[-1])  # the schedule of 256 images, 16 steps an epoch
    again = train(LeNet5, tiny, config)
    assert _epochs(again) == _epochs(h)  # the same images, whatever the machine's load


def test_the_safety_net_stops_training_but_never_the_scoring_and_says_so(tiny):
    h = train(LeNet5, tiny, replace(QUICK, epochs=2, batch_size=16, max_seconds=1e-9))
    assert h.stopped_early and h.budget_cut == "time" and len(h.epochs) == 1 and h.test_accuracy is not None
    assert "stopped by the budget's 1e-09 s safety net in epoch 1, after 1 of its 19 steps" in h.message
    assert h.val_images == 400
    calls = []
    train(LeNet5, tiny.without_labels(), replace(QUICK, max_seconds=1e-9),
          on_logits=lambda split, logits: calls.append((split, len(logits))))
    assert calls == [("val", 400), ("test", 500)]  # every image of each split


def test_train_subset_and_augmentation(tiny):
    h = train(LeNet5, tiny, TrainConfig(optimizer="adam", lr=1e-3, epochs=1, train_subset=128, augment="crop_flip"))
    assert h.status == "ok" and h.train_images_per_second > 0


def test_crop_flip_moves_pixels_but_keeps_the_image():
    from grader.child.train import _crop_flip

    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.int32).reshape(2, 3, 32, 32).to(torch.uint8)
    g = torch.Generator().manual_seed(0)
    y = _crop_flip(x, g)
    assert y.shape == x.shape and y.dtype == torch.uint8 and not torch.equal(x, y)
    assert torch.equal(_crop_flip(x, torch.Generator().manual_seed(0)), y)  # seeded


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_times_the_modes_and_replays_a_captured_step(data):
    h = train(LeNet5, data, QUICK, device="cuda")
    assert h.status == "ok" and h.device == "cuda" and h.test_accuracy > 0.5
    assert [n for n in h.notes if n.startswith(f"ran {'bf16 autocast' if h.precision == 'bf16' else 'fp32'}, ")
            and "the fastest of 4 modes" in n]
    assert not [n for n in h.notes if "CUDA graph" in n]  # LeNet-5 is captured


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_the_captured_step_trains_as_the_eager_one(tiny, optimizer):
    from grader.child.step import EagerStep, GraphStep
    from grader.child.train import _optimizer, _schedule

    cfg = replace(GOLDEN_CONFIG, optimizer=optimizer)
    device = torch.device("cuda")
    torch.manual_seed(0)
    models = [LeNet5().to(device), None]
    models[1] = copy.deepcopy(models[0])
    x = (tiny.train_images[:300].float() / 255).to(device)
    y = tiny.train_labels[:300].to(device)
    batches = [(x[i:i + 64], y[i:i + 64]) for i in range(0, 300, 64)] * 2  # full batches and a ragged one of 44
    losses = []
    for model, graphed in zip(models, (False, True)):
        opt = _optimizer(model, cfg, device)
        sched = _schedule(opt, cfg, len(batches))
        notes: list[str] = []
        step = EagerStep(model, opt, device, "fp32")
        step = GraphStep(step, 64, notes) if graphed else step
        run = []
        for xb, yb in batches:
            run.append(step(xb, yb).item())
            sched.step()
        assert notes == [] and (not graphed or step.graph is not None)
        losses.append(run)
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)  # cuDNN backward may sum in another order
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_host_sync_in_forward_falls_back_to_eager_on_cuda(tiny):
    class Syncing(LeNet5):
        def forward(self, x):
            if x.abs().max().item() > 1e6:  # a host sync: capture refuses it
                raise AssertionError("unreachable")
            return super().forward(x)

    h = train(Syncing, tiny, GOLDEN_CONFIG, device="cuda")
    assert h.status == "ok" and len(h.epochs) == 2
    assert [n for n in h.notes if "could not be captured as a CUDA graph" in n]


@pytest.mark.slow
@pytest.mark.realdata
def test_lenet_on_real_cifar10_images(real_cifar10):
    """10,000 real training images, 3 epochs on the CPU: well above chance (> 35%)."""
    root = real_cifar10
    ds = load_cifar10(root)
    assert ds.format == "image-folder" and len(ds.train_labels) == 50_000 and len(ds.test_labels) == 10_000
    data = training_data(ds, DataConfig(train_size=10_000, val_size=2_000))
    cfg = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, schedule="onecycle", batch_size=64,
                      epochs=3, seed=0)
    h = train(LeNet5, data, cfg)
    print(f"LeNet5, 10,000 real images, 3 epochs: test accuracy {h.test_accuracy:.2%}")
    assert h.status == "ok" and h.test_accuracy > 0.35, h.to_dict()


# ---- the step: eager losses, the CUDA graph's fallback, the mode chosen by timing ----------------

GOLDEN_CONFIG = TrainConfig(optimizer="sgd", lr=0.05, nesterov=True, schedule="onecycle", batch_size=64, epochs=2,
                            augment="crop_flip", seed=3, deterministic=True)
# (train loss, val loss, val accuracy, lr) per epoch of LeNet5 under GOLDEN_CONFIG on `tiny`, printed by
# the trainer before the step moved to grader.child.step (2026-11-29, torch 2.14.1 on CPU).
GOLDEN_EPOCHS = [(2.3119144439697266, 2.302751064300537, 0.0925000011920929, 0.04058728269748815),
                 (2.296639919281006, 2.300854206085205, 0.0925000011920929, 2e-07)]
GOLDEN_START_END = (2.3270928859710693, 2.2953901290893555)


def test_eager_step_gives_the_losses_recorded_before_it_was_refactored(tiny):
    h = train(LeNet5, tiny, GOLDEN_CONFIG)
    assert _flat(_epochs(h)) == pytest.approx(_flat(GOLDEN_EPOCHS), rel=1e-5)
    assert (h.loss_start, h.loss_end) == pytest.approx(GOLDEN_START_END, rel=1e-5)
    assert h.notes == ()  # the CPU times no modes and captures no graph: nothing to say


def test_a_step_that_cannot_be_captured_runs_eagerly_and_says_why(tiny):
    h = train(LeNet5, tiny, GOLDEN_CONFIG, capture=True)  # no CUDA here: capture fails after the warm-up steps
    assert [n for n in h.notes if "could not be captured as a CUDA graph" in n and n.endswith("it ran eagerly")]
    assert _flat(_epochs(h)) == pytest.approx(_flat(GOLDEN_EPOCHS), rel=1e-5)  # same steps, same order, same losses


@pytest.mark.parametrize("bf16_seconds, chosen", [(0.5, "bf16"), (2.0, "fp32")])
def test_the_mode_is_the_one_timed_fastest_and_the_weights_are_untouched(tiny, bf16_seconds, chosen):
    from grader.child.step import Mode, choose_mode
    from grader.child.train import _optimizer

    torch.manual_seed(0)
    model = LeNet5()
    before = copy.deepcopy(model.state_dict())
    timed: list[Mode] = []

    def stub_timer(mode, run):  # runs the steps, but says bf16 took bf16_seconds and fp32 one second
        run()
        timed.append(mode)
        return bf16_seconds if mode.precision == "bf16" else 1.0

    x, y = tiny.train_images[:8].float() / 255, tiny.train_labels[:8]
    candidates = [Mode("fp32", False), Mode("fp32", True), Mode("bf16", True)]
    notes: list[str] = []
    mode = choose_mode(model, lambda m: _optimizer(m, GOLDEN_CONFIG, torch.device("cpu")), x, y, candidates,
                       stub_timer, notes)
    assert timed == candidates
    assert mode == (Mode("bf16", True) if chosen == "bf16" else Mode("fp32", False))  # a tie keeps the first listed
    assert notes[0].startswith(f"ran {mode.label}: the fastest of 3 modes timed")
    assert f"bf16 autocast, channels_last {bf16_seconds / 5 * 1e3:.2f} ms" in notes[0]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the timed steps were undone
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last) == mode.channels_last


def _flat(rows: list[tuple]) -> list[float]:
    return [v for row in rows for v in row]
