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
    assert reported(code("m = LeNet()\nevaluate(m)", out))["LeNet"]["test_acc"] == 0.8072


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
