"""Reported metrics: many real output formats, each value attributed to the right model."""

import pytest

from grader.analysis import METRICS, analyze
from nbfactory import LENET, WIDENET, code, notebook

MODELS = code(LENET + WIDENET)


def reported(*cells):
    """Model -> its reported values and epoch count (evidence aside)."""
    found = analyze(notebook(MODELS, *cells)).reported
    return {name: {key: getattr(r, key) for key in (*METRICS, "epochs")} for name, r in found.items()}


@pytest.mark.parametrize(
    "output, expected",
    [
        # f-string epoch log, accuracies in percent
        ("Epoch 1/2 | train loss 1.5 | val loss 1.4 | val acc 45.5%\nEpoch 2/2 | train loss 1.2 | val loss 1.3 | val acc 50.25%\n",
         {"train_loss": 1.2, "val_loss": 1.3, "val_acc": 0.5025, "test_acc": None, "epochs": 2}),
        # the PyTorch tutorial: "[epoch, batch] loss" and "Accuracy of the network on the 10000 test images: 54 %"
        ("[1,  2000] loss: 2.173\n[1,  4000] loss: 1.862\n[2,  2000] loss: 1.512\nFinished Training\n"
         "Accuracy of the network on the 10000 test images: 54 %\n",
         {"train_loss": 1.512, "val_loss": None, "val_acc": None, "test_acc": 0.54, "epochs": 2}),
        # Keras-style progress lines with ANSI escapes; the bare accuracy of an epoch line is training accuracy
        ("Epoch 1/2\n\x1b[1m352/352\x1b[0m - accuracy: 0.5 - loss: 1.4 - val_accuracy: 0.55 - val_loss: 1.3\n"
         "Epoch 2/2\n\x1b[1m352/352\x1b[0m - accuracy: 0.6 - loss: 1.1 - val_accuracy: 0.61 - val_loss: 1.2\n",
         {"train_loss": 1.1, "val_loss": 1.2, "val_acc": 0.61, "test_acc": None, "epochs": 2}),
        # qualifier carried to the next metric; best/peak values skipped; fraction accuracies
        ("Epoch 3, Training Loss: 0.5, Validation Loss: 0.9, Accuracy: 71.5%\nBest Validation Accuracy: 75%\n"
         "test acc = 0.7523 best val = 0.753\n",
         {"train_loss": 0.5, "val_loss": 0.9, "val_acc": 0.715, "test_acc": 0.7523, "epochs": 1}),
        # counts are more precise than the rounded percent; per-class lines are not the model's accuracy
        ("Test set: Average loss: 1.40, Accuracy: 4962/10000 (50%)\nAccuracy of cat : 45 %\nOverall accuracy: 61 %\n",
         {"train_loss": None, "val_loss": None, "val_acc": None, "test_acc": 0.61, "epochs": None}),
        # leading epoch integers and a dict printout
        ("1 train loss 1.6 val loss 1.5 val acc 0.42\n2 train loss 1.2 val loss 1.1 val acc 0.52\n{'test_acc': 0.55, 'best_val_acc': 0.6}\n",
         {"train_loss": 1.2, "val_loss": 1.1, "val_acc": 0.52, "test_acc": 0.55, "epochs": 2}),
    ],
)
def test_formats(output, expected):
    assert reported(code("m = LeNet()\ntrain(m, epochs=2)", output)) == {"LeNet": expected}


def test_a_sklearn_report_does_not_replace_the_precise_accuracy():
    out = "Overall Accuracy: 80.72%\n              precision    recall  f1-score   support\n\n    accuracy                           0.81     10000\n"
    assert reported(code("m = LeNet()\nevaluate(m, test_loader)", out))["LeNet"]["test_acc"] == 0.8072


def test_attribution_by_cell_then_by_last_model_used():
    result = reported(
        code("a = LeNet()\ntrain(a, lr=0.1)", "Epoch 1, Loss: 2.0\nEpoch 2, Loss: 1.5\n"),
        code("b = WideNet()\ntrain(b, lr=0.1)", "Epoch 1, Loss: 1.0\n"),
        code("print(final)", "Test accuracy: 70%\n"),  # no model in the cell: the last one used
    )
    assert result["LeNet"]["train_loss"] == 1.5 and result["LeNet"]["test_acc"] is None
    assert result["WideNet"] == {"train_loss": 1.0, "val_loss": None, "val_acc": None, "test_acc": 0.7, "epochs": 1}


def test_one_cell_training_two_models_splits_on_restart_and_names():
    out = "Epoch 1 loss 2.0\nEpoch 2 loss 1.8\nEpoch 1 loss 1.2\nEpoch 2 loss 0.9\nLeNet test accuracy: 55%\nWideNet test accuracy: 66%\n"
    result = reported(code("a = LeNet()\nb = WideNet()\nfor m in [a, b]:\n    train(m, epochs=2)", out))
    assert (result["LeNet"]["train_loss"], result["LeNet"]["test_acc"]) == (1.8, 0.55)
    assert (result["WideNet"]["train_loss"], result["WideNet"]["test_acc"]) == (0.9, 0.66)


def test_pandas_tables_html_and_text():
    html = ("<table><thead><tr><th></th><th>model</th><th>val_acc</th><th>test_acc</th></tr></thead><tbody>"
            "<tr><th>0</th><td>LeNet</td><td>0.60</td><td>0.58</td></tr>"
            "<tr><th>1</th><td>WideNet</td><td>0.72</td><td>0.71</td></tr></tbody></table>")
    result = reported(code("a = LeNet()\nb = WideNet()\ndf", {"text/plain": "...", "text/html": html}))
    assert (result["LeNet"]["val_acc"], result["WideNet"]["test_acc"]) == (0.6, 0.71)

    text = "   train_loss  val_loss  val_acc\n0  1.2  1.3  0.50\n1  0.9  1.1  0.61\n"
    assert reported(code("m = WideNet()\nhistory", {"text/plain": text}))["WideNet"]["val_acc"] == 0.61


def test_no_models_means_nothing_is_attributed():
    nb = notebook(code("print('x')", "Test accuracy: 50%\n"))
    assert analyze(nb).reported == {}


def test_outputs_of_a_model_that_is_not_a_class_are_not_attributed():
    result = reported(
        code("a = LeNet()\ntrain(a, epochs=1)", "Epoch 1, Loss: 2.0\n"),
        code("seq = make_sequential()\ntrain(seq, epochs=1)", "Epoch 1, Loss: 0.5\n"),
        code("evaluate(a)\nevaluate(seq)", "Baseline test accuracy: 50%\nProposed test accuracy: 70%\n"),
    )
    assert result == {"LeNet": {"train_loss": 2.0, "val_loss": None, "val_acc": None, "test_acc": 0.5, "epochs": 1}}


# --- models named by run keys, several models per cell, tables keyed by run name ----------------

KEYED = code(LENET.replace("LeNet", "BaselineCNN") + WIDENET.replace("WideNet", "CNNv2"))
EPOCH_LOG = "Epoch {e}/2 | train_loss={tl} val_loss={vl} | val_acc={va}\n"


def keyed(*cells):
    """Model -> its reported values, evidence included, for a notebook with BaselineCNN and CNNv2."""
    return analyze(notebook(KEYED, *cells)).reported


def two_runs(tag="Training {key}\n"):
    """A log of both models, cnnv2 first, each introduced by its run key only (never the class name)."""
    out = ""
    for key, losses in (("cnnv2", (1.2, 0.8)), ("baseline", (2.0, 1.5))):
        out += tag.format(key=key)
        for e, tl in enumerate(losses, 1):
            out += EPOCH_LOG.format(e=e, tl=tl, vl=round(tl + 0.1, 2), va=round(0.3 + tl / 10, 2))
    return out


FACTORY = (
    'def build_model(name):\n    if name == "baseline":\n        return BaselineCNN()\n    if name == "cnnv2":\n'
    '        return CNNv2()\n\ndef train_model(name):\n    model = build_model(name)\n    print(f"Training {name}")\n    fit(model)\n'
)


# The code mentions the classes baseline first and the log runs cnnv2 first: only the keys tell them apart.
@pytest.mark.parametrize(
    "sources",
    [
        # a dict of models, trained in a loop over its items
        ['models = {"cnnv2": CNNv2(), "baseline": BaselineCNN()}',
         'for name, model in models.items():\n    print(f"Training {name}")\n    train(model, epochs=2)'],
        ['models = {"baseline": BaselineCNN(), "cnnv2": CNNv2()}\nfor name in ["cnnv2", "baseline"]:\n'
         '    print(f"Training {name}")\n    train(models[name], epochs=2)'],
        # a factory choosing by name, called by a training function, over a list of names
        [FACTORY, 'runs = [train_model(n) for n in ["cnnv2", "baseline"]]'],
        # (name, model) pairs
        ['runs = [("baseline", BaselineCNN()), ("cnnv2", CNNv2())]',
         'for name, model in reversed(runs):\n    print(f"Training {name}")\n    train(model)'],
        # the run named by a keyword argument
        ['a = BaselineCNN()\nb = CNNv2()\ntrain(b, name="cnnv2")\ntrain(a, name="baseline")'],
    ],
)
def test_logs_tagged_with_a_run_key_go_to_the_class_the_code_pairs_it_with(sources):
    *setup, training = sources
    found = keyed(*(code(s) for s in setup), code(training, two_runs()))
    assert {m: (r.train_loss, r.val_loss, r.val_acc, r.epochs) for m, r in found.items()} == {
        "BaselineCNN": (1.5, 1.6, 0.45, 2),
        "CNNv2": (0.8, 0.9, 0.38, 2),
    }
    cell = len(sources)
    assert found["BaselineCNN"].evidence["val_acc"] == f"cell {cell}: Epoch 2/2 | train_loss=1.5 val_loss=1.6 | val_acc=0.45"


def test_interleaved_lines_tagged_with_keys():
    out = ("[baseline] Epoch 1 loss 2.0 val_acc 30%\n[cnnv2] Epoch 1 loss 1.5 val_acc 40%\n"
           "[baseline] Epoch 2 loss 1.8 val_acc 35%\n[cnnv2] Epoch 2 loss 1.2 val_acc 50%\n"
           "baseline vs cnnv2: test accuracy 0.55 vs 0.66\n")  # a comparison names both: nobody's
    found = keyed(code('models = {"baseline": BaselineCNN(), "cnnv2": CNNv2()}\nfor k, m in models.items():\n    train(m)', out))
    assert {m: (r.train_loss, r.val_acc, r.test_acc, r.epochs) for m, r in found.items()} == {
        "BaselineCNN": (1.8, 0.35, None, 2),
        "CNNv2": (1.2, 0.5, None, 2),
    }


def test_a_registry_subscript_and_a_factory_call_name_their_model():
    found = keyed(
        code('models = {"baseline": BaselineCNN(), "cnnv2": CNNv2()}'),
        code('train(models["cnnv2"])', "Epoch 1 loss 0.7\n"),
        code('def make(kind):\n    if kind == "baseline":\n        return BaselineCNN()\n    return CNNv2()\n\nm = make("baseline")\ntrain(m)',
             "Epoch 1 loss 1.9\n"),
    )
    assert (found["CNNv2"].train_loss, found["BaselineCNN"].train_loss) == (0.7, 1.9)


HTML_RESULTS = (
    "<table><thead><tr><th></th><th>model</th><th>test_accuracy</th><th>test_f1_macro</th></tr></thead><tbody>"
    "<tr><th>1</th><td>cnnv2</td><td>0.9056</td><td>0.905</td></tr>"
    "<tr><th>0</th><td>baseline</td><td>0.7717</td><td>0.770</td></tr></tbody></table>"
)
# pandas prints a wide frame in blocks, each header but the last ending with a backslash
TEXT_RESULTS = (
    "      model  test_accuracy  test_precision_macro  \\\n1     cnnv2         0.9056              0.905347   \n"
    "0  baseline         0.7717              0.769869   \n\n   best_val_acc  \n1        0.9134  \n0        0.7702  \n"
)
PER_CLASS = "      model   class  accuracy\n1  baseline    ship     0.855\n2     cnnv2     cat     0.783\n"


@pytest.mark.parametrize("output", [{"text/plain": TEXT_RESULTS, "text/html": HTML_RESULTS}, {"text/plain": TEXT_RESULTS}])
def test_tables_keyed_by_run_name(output):
    found = keyed(
        code(FACTORY),
        code("results_df", output, {"text/plain": PER_CLASS}),  # per-class accuracies are not the models'
    )
    assert {m: (r.test_acc, r.val_acc) for m, r in found.items()} == {"BaselineCNN": (0.7717, None), "CNNv2": (0.9056, None)}
    assert found["CNNv2"].evidence == {"test_acc": "cell 2: table row 'cnnv2', column 'test_accuracy'"}


def test_a_table_with_models_as_columns():
    text = "          baseline   cnnv2\ntest_acc    0.7717  0.9056\nval_loss    1.0349  0.7681\n"
    found = keyed(code('runs = {"baseline": BaselineCNN(), "cnnv2": CNNv2()}'), code("summary.T", {"text/plain": text}))
    assert {m: (r.test_acc, r.val_loss) for m, r in found.items()} == {"BaselineCNN": (0.7717, 1.0349), "CNNv2": (0.9056, 0.7681)}


# --- several models in one cell, several runs of one model -------------------------------------


def test_models_evaluated_in_turn_without_epoch_lines():
    out = "Test accuracy: 55.0%\nTest accuracy: 66.0%\n"
    result = reported(code("for m in [LeNet(), WideNet()]:\n    print(evaluate(m))", out))
    assert (result["LeNet"]["test_acc"], result["WideNet"]["test_acc"]) == (0.55, 0.66)


def test_the_last_run_of_a_class_trained_twice_is_reported():
    result = reported(
        code("m = LeNet()\ntrain(m, lr=0.1)", "Epoch 1 loss 2.0 val loss 2.1\nEpoch 2 loss 1.5 val loss 1.7\nEpoch 3 loss 1.2 val loss 1.6\n"),
        code("m = LeNet()\ntrain(m, lr=0.01)", "Epoch 1 loss 1.9\nEpoch 2 loss 1.4\n"),
    )
    # the second run printed no validation loss: the first run's is not reported with it
    assert result["LeNet"] == {"train_loss": 1.4, "val_loss": None, "val_acc": None, "test_acc": None, "epochs": 2}


def test_a_best_epoch_line_does_not_start_a_new_run():
    out = "Epoch 1 loss 2.0 val acc 40%\nEpoch 2 loss 1.5 val acc 50%\nEpoch 3 loss 1.4 val acc 48%\nBest model saved at epoch 2 (val acc 50%)\n"
    assert reported(code("m = LeNet()\ntrain(m)", out))["LeNet"] == {
        "train_loss": 1.4, "val_loss": None, "val_acc": 0.48, "test_acc": None, "epochs": 3}


# --- more output formats ------------------------------------------------------------------------

LIGHTNING_TEST = """\
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃        Test metric        ┃       DataLoader 0        ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│         test_acc          │    0.5432000160217285     │
│         test_loss         │    1.2999999523162842     │
└───────────────────────────┴───────────────────────────┘
"""


@pytest.mark.parametrize(
    "output, expected",
    [
        # full histories: the value is the last element; an unqualified accuracy history is training accuracy
        ("{'loss': [2.1, 1.8, 1.5], 'accuracy': [0.3, 0.4, 0.5], 'val_loss': [2.0, 1.9, 1.7], 'val_accuracy': [0.3, 0.4, 0.45]}\n",
         {"train_loss": 1.5, "val_loss": 1.7, "val_acc": 0.45, "test_acc": None, "epochs": None}),
        # numpy arrays, broken over lines as numpy prints them
        ("{'train_loss': array([2.1 , 1.8 , 1.5 , 1.3 , 1.2 , 1.1 , 1.05, 1.  , 0.95,\n       0.9 ]),\n"
         " 'val_acc': array([31.2, 42.5,\n       47.75])}\n",
         {"train_loss": 0.9, "val_loss": None, "val_acc": 0.4775, "test_acc": None, "epochs": None}),
        # PyTorch Lightning's trainer.test table (the test loss is not one of the metrics)
        (LIGHTNING_TEST, {"train_loss": None, "val_loss": None, "val_acc": None, "test_acc": 0.5432000160217285, "epochs": None}),
        # the PyTorch tutorial's overall line, then per-class lines that must not count
        ("Accuracy of the network on the 10000 test images: 54 %\nAccuracy of plane : 87 %\nAccuracy of   car : 90 %\n"
         "Accuracy of truck : 61 %\n",
         {"train_loss": None, "val_loss": None, "val_acc": None, "test_acc": 0.54, "epochs": None}),
        # an epoch split over two lines; the second line's bare "Acc" belongs to the epoch log
        ("Epoch 49: Train Loss: 0.0512, Train Acc: 98.20%\n           Val Loss: 1.6001, Acc: 76.90%\n"
         "Epoch 50: Train Loss: 0.0456, Train Acc: 98.54%\n           Val Loss: 1.6644, Val Acc: 77.08%\n",
         {"train_loss": 0.0456, "val_loss": 1.6644, "val_acc": 0.7708, "test_acc": None, "epochs": 2}),
        # timestamped logs
        ("2024-03-01 12:00:03 INFO Epoch 2/3 - train_loss: 0.61 - val_loss: 0.72 - val_acc: 0.741\n"
         "2024-03-01 12:00:09 INFO Epoch 3/3 - train_loss: 0.52 - val_loss: 0.70 - val_acc: 0.755\n"
         "[12:00:10] test accuracy 0.7488\n",
         {"train_loss": 0.52, "val_loss": 0.7, "val_acc": 0.755, "test_acc": 0.7488, "epochs": 2}),
        ("[12:00:03] epoch 1 loss=1.9 acc=0.31 val_loss=1.7 val_acc=0.38\n[12:01:03] epoch 2 loss=1.6 acc=0.42 val_loss=1.5 val_acc=0.47\n",
         {"train_loss": 1.6, "val_loss": 1.5, "val_acc": 0.47, "test_acc": None, "epochs": 2}),
        # per-batch logs, then an epoch summary: the last value printed of each metric
        ("Epoch 1 [100/391] loss: 2.10\nEpoch 1 [200/391] loss: 1.95\nEpoch 1 summary: train_loss 1.98 val_loss 1.85 val_acc 33.1%\n"
         "Epoch 2 [100/391] loss: 1.71\nEpoch 2 [200/391] loss: 1.64\nEpoch 2 summary: train_loss 1.69 val_loss 1.60 val_acc 41.0%\n"
         "Epoch 3 [100/391] loss: 1.52\n",
         {"train_loss": 1.52, "val_loss": 1.6, "val_acc": 0.41, "test_acc": None, "epochs": 3}),
        # a diverged loss is read at its size; a whole number that large beside it is a count, not a loss;
        # a tqdm bar over one epoch's iterations ("Epoch:2 iteration:351 ... 351/782 [") counts no epochs,
        # and an epoch its bar leaves at 45% is not a complete one
        ("Epoch:1 iteration:782 | loss:98340.46 accuracy:0.31:  100%| 782/782 [30:00<00:00]\n"
         "Epoch:1 | Test Loss:3.1045 Test Accuracy:0.3398\n"
         "Epoch:2 iteration:351 | loss:3425827366.886931 accuracy:0.3568:  45%| 351/782 [12:50<13:56]\n"
         "images seen: 50000 loss 20000\n",
         {"train_loss": 3425827366.886931, "val_loss": None, "val_acc": None, "test_acc": 0.3398, "epochs": 1}),
        # "Cost" is the loss in an epoch log; elsewhere (time, FLOPs) it is no metric
        ("Epoch: 001/002 | Batch 0000/0391 | Cost: 2.3068\nEpoch: 002/002 | Batch 0350/0391 | Cost: 0.4897\n"
         "Inference cost: 0.0031 s per image\n",
         {"train_loss": 0.4897, "val_loss": None, "val_acc": None, "test_acc": None, "epochs": 2}),
    ],
)
def test_more_formats(output, expected):
    assert reported(code("m = LeNet()\ntrain(m, epochs=2)", output)) == {"LeNet": expected}


def test_a_history_shown_as_the_cells_value_is_named_by_its_expression():
    result = reported(
        code("m = LeNet()\nhistory = train(m, epochs=3)"),
        code("history['val_acc']", {"text/plain": "[0.31, 0.42, 0.47]"}),
        code("np.array(history['train_loss'])", {"text/plain": "array([2.1, 1.7, 1.4])"}),
    )
    assert result["LeNet"] == {"train_loss": 1.4, "val_loss": None, "val_acc": 0.47, "test_acc": None, "epochs": None}


# --- outputs that belong to no class ------------------------------------------------------------


def test_models_that_are_not_classes_do_not_take_the_last_class_outputs():
    flatten = "class Flatten(nn.Module):\n    def forward(self, x):\n        return x.flatten(1)\n"
    result = reported(
        code("m = LeNet()\ntrain(m)", "Epoch 1 loss 2.0\nTest accuracy: 50%\n"),
        # a class used as a layer of an nn.Sequential variable: the outputs are the variable's
        code(flatten + "model = nn.Sequential(nn.Conv2d(3, 8, 3), Flatten(), nn.LazyLinear(10))\nevaluate(model)", "Test accuracy: 61%\n"),
        code("print(best)", "Test accuracy: 62%\n"),
        # a module of the same name imported from a file replaces the notebook's class
        code("from models.lenet import LeNet\nnet = LeNet()\nnet.load_state_dict(torch.load('w.pth'))\nnet.eval()\nevaluate(net)",
             "Test accuracy: 63%\n"),
        code("net = torch.hub.load('pytorch/vision', 'googlenet', pretrained=True)\nnet.eval()\nevaluate(net)", "Test accuracy: 64%\n"),
    )
    assert result == {"LeNet": {"train_loss": 2.0, "val_loss": None, "val_acc": None, "test_acc": 0.5, "epochs": 1}}


def test_a_cell_that_does_not_parse_is_attributed_by_the_models_it_names():
    result = reported(
        code("a = LeNet()\ntrain(a)", "Epoch 1, Loss: 2.0\n"),
        # a leading space on the first line only: neither Python nor IPython parses it
        code(" if TRAINING:\n    b = WideNet()\n    train(b)\n", "Epoch 1, Loss: 1.0\n"),
        code("print(x", "Test accuracy: 70%\n"),  # names no model: the last one used
    )
    assert (result["LeNet"]["train_loss"], result["WideNet"]["train_loss"], result["WideNet"]["test_acc"]) == (2.0, 1.0, 0.7)


def test_a_variable_bound_again_holds_the_new_model():
    result = reported(
        code("m = LeNet()\ntrain(m)", "Epoch 1 loss 2.0\n"),
        code("m = WideNet()\ntrain(m)", "Epoch 1 loss 1.0\nEpoch 2 loss 0.5\n"),
    )
    assert (result["LeNet"]["train_loss"], result["WideNet"]["train_loss"], result["WideNet"]["epochs"]) == (2.0, 0.5, 2)


# --- the metric, the split and the model are each read, never guessed -------------------------


def test_a_split_word_without_a_metric_is_read_through_the_code_that_prints_it():
    train = ("def train_model(model, name):\n    print(f'train {len(train_set)} | val {len(val_set)}')\n"
             "    for epoch in range(2):\n"
             "        print(f'[{name}] epoch {epoch+1:3d}/2 | train {train_loss:.4f} | '\n"
             "              f'val {val_loss:.4f} | val acc {val_acc*100:.2f}% | 18.6s')")
    log = "[lenet_drop0.5] epoch   1/2 | train 2.2071 | val 1.9157 | val acc 26.32% | 19.4s\n" \
          "[lenet_drop0.5] epoch   2/2 | train 1.7865 | val 1.5839 | val acc 41.36% | 18.8s\n"
    # the run key is a positional argument beside the model: the line's prefix names LeNet
    cells = [code(train), code("m = WideNet()"), code("train_model(LeNet(dropout=0.5), 'lenet_drop0.5')", log),
             code("print(f'train {len(train_set)} | val {len(val_set)}')", "train 45000 | val 5000\n")]  # not the epoch's f-string
    assert reported(*cells)["LeNet"] == {"train_loss": 1.7865, "val_loss": 1.5839, "val_acc": 0.4136, "test_acc": None, "epochs": 2}
    # printed by code the notebook does not hold: the numbers stay unread, and --explain says why
    a = analyze(notebook(MODELS, code("m = LeNet()\ntrain(m)", log)))
    assert (a.reported["LeNet"].train_loss, a.reported["LeNet"].val_acc) == (None, 0.4136)
    assert any("'train' is followed by a number with no metric name" in u.reason for u in a.reading.unread)


@pytest.mark.parametrize("source, output, expected", [
    # the cell's code reads the test split only
    ("m = LeNet()\nacc = evaluate(m, test_loader)\nprint(f'Accuracy: {acc}')", "Accuracy: 0.61\n", {"test_acc": 0.61}),
    ("m = LeNet()\nacc = evaluate(m, val_loader)\nprint(f'Accuracy: {acc}')", "Accuracy: 0.61\n", {"val_acc": 0.61}),
    # the expression it prints says it
    ("m = LeNet()\nprint(f'Accuracy: {test_acc}')", "Accuracy: 0.61\n", {"test_acc": 0.61}),
    # both splits, or none: unread (sklearn's "Accuracy: 0.73, Precision: ..." after training on both)
    ("m = LeNet()\ntrain(m, train_loader, val_loader)\nevaluate(m, test_loader)", "Accuracy: 0.73, Precision: 0.74\n", {}),
    ("m = LeNet()\nprint(f'Accuracy: {accuracy}, Precision: {precision}')", "Accuracy: 0.73, Precision: 0.74\n", {}),
    # the line after an epoch line that names the validation split
    ("m = LeNet()\ntrain(m)", "Epoch 1: training loss 1.9571, validation loss 1.6425\nAccuracy: 0.3747\nPrecision: 0.17\n",
     {"train_loss": 1.9571, "val_loss": 1.6425, "val_acc": 0.3747}),
])
def test_an_accuracy_takes_its_split_from_the_line_the_code_or_the_lines_above(source, output, expected):
    found = reported(code(source, output)).get("LeNet", {})
    assert {k: v for k, v in found.items() if v is not None and k != "epochs"} == expected


def test_an_error_rate_is_not_turned_into_an_accuracy():
    a = analyze(notebook(MODELS, code("m = LeNet()\ntrain(m)", "Epoch 1 loss 1.2\nTest error: 35.2%\n")))
    assert a.reported["LeNet"].test_acc is None
    assert [u.reason for u in a.reading.unread] == [
        "an error rate: the grader reads accuracies as printed, not 1 - error; print 'test accuracy: ...'"]


def test_the_split_of_a_cell_that_prints_what_earlier_cells_computed():
    cells = [code("m = LeNet()\ncorrect = 0\nfor x, y in test_loader:\n    correct += (m(x).argmax(1) == y).sum()"),
             code("overall = 100 * correct / 10000\nprint(f'Overall Accuracy: {overall:.2f}%')", "Overall Accuracy: 80.72%\n")]
    assert reported(*cells)["LeNet"]["test_acc"] == 0.8072


def test_a_history_named_with_words_keeps_its_last_value():
    numpy_wrapped = ("Training loss history: [1.95708299 1.71388149 1.5256021\n 0.92637336 1.64183807\n 0.14616829]\n"
                     "Validation loss history: [2.34119153e+00 1.89385486e+00\n 1.59649503e+00]\n")
    result = reported(code("m = LeNet()\ntrain(m)", numpy_wrapped))["LeNet"]
    assert (result["train_loss"], result["val_loss"]) == (0.14616829, 1.59649503)


def test_summary_tables_read_only_the_columns_that_are_a_metric():
    table = ("   family     best variant  test acc (%)  epochs to 70% val acc  final train-val gap (loss)\n"
             "    LeNet        lenet_a          86.03                      8                       0.230\n"
             "  WideNet      widenet_b          91.88                      3                       0.127\n")
    cells = [code("a = LeNet()\ntrain(a, name='lenet_a')"), code("b = WideNet()\ntrain(b, name='widenet_b')"),
             code("print(df.to_string(index=False))", table)]
    assert {m: (r["test_acc"], r["val_acc"], r["val_loss"]) for m, r in reported(*cells).items()} == {
        "LeNet": (0.8603, None, None), "WideNet": (0.9188, None, None)}


def test_a_model_summary_lists_modules_not_values():
    summary = ("  | Name      | Type     | Params\n---------------------------------------\n0 | model     | LeNet    | 62.0 K\n"
               "1 | train_acc | Accuracy | 0\n2 | valid_acc | Accuracy | 0\n\nEpoch 1: val_acc 0.41\n")
    assert reported(code("m = LeNet()\ntrainer.fit(m)", summary))["LeNet"]["val_acc"] == 0.41


def test_training_further_without_building_again_adds_the_epochs():
    result = reported(code("m = LeNet()"), code("train(m)", "Epoch 1, Loss: 0.8\nEpoch 2, Loss: 0.6\nEpoch 3, Loss: 0.5\n"),
                      code("train(m)", "Epoch 1, Loss: 0.37\nEpoch 2, Loss: 0.19\n"))
    assert (result["LeNet"]["epochs"], result["LeNet"]["train_loss"]) == (5, 0.19)


def test_a_model_of_no_class_is_reported_apart():
    a = analyze(notebook(code("import torchvision\nmodel = torchvision.models.resnet18()"),
                         code("train(model)", "Epoch 1, Loss: 0.8\nEpoch 2, Loss: 0.6\n")))
    assert a.reported == {} and (a.reading.unattributed.train_loss, a.reading.unattributed.epochs) == (0.6, 2)


def test_a_class_trained_again_under_a_class_never_built_reports_nothing():
    cells = [code("m = LeNet()\ntrain(m)", "epoch 2, loss 0.0103, test acc 0.491\n"),
             code("class LeNetDropout(nn.Module):\n    pass"),
             code("m = LeNet()\ntrain(m)", "epoch 2, loss 0.0105, test acc 0.508\n")]
    a = analyze(notebook(MODELS, *cells))
    assert "LeNet" not in a.reported
    assert any("did you mean LeNetDropout()?" in w for w in a.warnings)
    assert "did you mean LeNetDropout()?" in a.reading.left_out["LeNet"]  # for the checks' messages


def test_an_output_cut_at_the_cap_counts_the_epochs_of_its_cut_part():
    line = "Epoch {}, Training Loss 0.5\n"
    log = "".join(line.format(e) for e in range(1, 301) for _ in range(200))  # 1.3 MB, epochs 1..300
    result = reported(code("m = LeNet()\ntrain(m)", log))["LeNet"]
    assert (result["train_loss"], result["epochs"]) == (0.5, 300)
    # two runs in the cut part: which epochs are the last run's is unknown, so there is no count
    log = "".join(line.format(e) for e in [*range(1, 11), *range(1, 301)] for _ in range(200))
    assert reported(code("m = LeNet()\ntrain(m)", log))["LeNet"]["epochs"] is None


# --- hostile shapes stay fast ------------------------------------------------------------------


def test_nested_builder_calls_and_deep_arguments_are_read():
    depth = 190  # near the parser's limit of 200 levels (main overflowed the stack here)
    nested = "f(" * depth + "LeNet()" + ")" * depth
    a = analyze(notebook(MODELS, code(f"def f(m):\n    return WideNet()\n\ny = {nested}\ntrain({nested}, lr={nested})", "Epoch 1 loss 0.5\n")))
    assert a.usage.cells[1].models == ("LeNet",) and a.reported["LeNet"].train_loss == 0.5


def test_a_megabyte_of_unclosed_histories_is_read_in_linear_time():
    import time

    start = time.perf_counter()
    result = reported(code("m = LeNet()\ntrain(m)", "val loss: [" * 150_000 + "\nEpoch 1 val loss [0.9, 0.8]\n"))
    assert time.perf_counter() - start < 10  # quadratic took minutes
    assert result["LeNet"]["val_loss"] == 0.8


def test_a_history_longer_than_the_line_cap_keeps_its_name_and_last_value():
    history = "val acc: [" + ", ".join(["0.5012"] * 5_000) + ", 0.7301]\n"  # 40,000 characters on one line
    assert reported(code("m = LeNet()\ntrain(m)", history))["LeNet"]["val_acc"] == 0.7301


def test_runs_of_spaces_and_of_report_headers_read_as_before():
    out = "Epoch 1 val_acc:" + " " * 15_000 + "[0.4, 0.55]\nTest accuracy: 61%\n" + "precision " * 50_000 + "\n"
    result = reported(code("m = LeNet()\ntrain(m)", out))["LeNet"]
    assert (result["val_acc"], result["test_acc"]) == (0.55, 0.61)
