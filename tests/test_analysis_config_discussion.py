from grader.analysis import analyze
from nbfactory import LENET, WIDENET, code, md, notebook

TRAIN = "def train(model, loader, epochs=10, lr=0.01, log_every=100):\n    pass\n"


def config(*cells):
    a = analyze(notebook(code(LENET + WIDENET + TRAIN), *cells))
    return a.config


def test_same_function_and_settings():
    c = config(code("EPOCHS = 5\na = LeNet()\ntrain(a, loader, epochs=EPOCHS)\nb = WideNet()\ntrain(b, loader, epochs=5, log_every=10)"))
    assert c.same is True  # logging options are not optimization settings


def test_constants_resolved_at_the_time_of_the_call():
    c = config(code("LR = 0.01\na = LeNet()\ntrain(a, loader, lr=LR)\nLR = 0.1\nb = WideNet()\ntrain(b, loader, lr=LR)"))
    assert c.same is False and c.differing == ("lr",)
    assert "lr: 0.01 vs 0.1" in c.detail


def test_optimizers_are_compared():
    c = config(code(
        "import torch\na = LeNet()\nopt = torch.optim.SGD(a.parameters(), 0.01, 0.9)\nfor e in range(10):\n    loss = step(a, opt); loss.backward()\n"
        "b = WideNet()\nopt = torch.optim.Adam(b.parameters(), lr=0.001)\nfor e in range(10):\n    loss = step(b, opt); loss.backward()\n"
    ))
    assert c.same is False
    assert "optimizer: SGD(lr=0.01, momentum=0.9) vs Adam(lr=0.001)" in c.detail


def test_untrained_model_cannot_be_compared():
    c = config(code("a = LeNet()\ntrain(a, loader)\nb = WideNet()"))
    assert c.same is None and "could not find where WideNet is trained" in c.detail


def test_discussion_needs_prose_about_results_after_the_models():
    words = "The proposed model is better than the baseline because batch normalization and more filters improve generalization on the validation set by a wide margin."
    before = analyze(notebook(md(words), code(LENET)))
    assert before.discussion.present is False
    after = analyze(notebook(code(LENET), md("## Discussion\n(Add text here)"), md("## Results\n" + words)))
    assert after.discussion.present is True and after.discussion.cell == 2
    headings_only = analyze(notebook(code(LENET), md("# Results\n## Which model is better?")))
    assert headings_only.discussion.present is False
    commented_out = analyze(notebook(code(LENET), md("<!-- " + words + " -->")))
    assert commented_out.discussion.present is False


def test_comments_code_images_and_tags_are_cut_and_an_unclosed_one_keeps_the_rest():
    from grader.analysis.discussion import prose

    text = prose("a <!-- b --> c ```d``` e ![f](g.png) h <i>j</i> k\n# l\n(add your text here) m <!-- n ``` o")
    assert text.split() == ["a", "c", "e", "h", "j", "k", "m", "<!--", "n", "```", "o"]
    assert prose("<" * 100_000 + "x").split() == ["<" * 100_000 + "x"]


def test_a_sentence_is_read_from_its_first_2000_characters():
    from grader.analysis.discussion import read_claims

    opening = "The proposed model outperforms the baseline"
    late = "In our runs " + "the training went on " * 120 + "and " + opening.lower() + " in the end."
    for text, winner in ((opening + " " + "by far " * 400 + ".", "proposed"), (late, None)):
        nb = notebook(code(LENET), md(text))
        claims = read_claims(analyze(nb).discussion, nb, "LeNet", None)
        assert claims.winner == winner, text[:60]


def test_a_prompt_and_text_that_introduces_code_are_not_a_discussion():
    prompt = ("b. Extend your CNN by adding one more convolution layer. Train your network for 300 epochs. Report your "
              "training time, loss and accuracy, and compare your results against the baseline on accuracy and model size.")
    narration = ("Next, we initialize our model. Also, we define a callback so that we can keep the model with the best "
                 "validation performance after training, and we keep things simple with a CSV logger:")
    a = analyze(notebook(code(LENET), md(prompt), md(narration)))
    assert a.discussion.present is False
    answer = "The deeper model reached a higher validation accuracy than the baseline, because its extra layer learns more features."
    both = analyze(notebook(code(LENET), md(prompt), md(answer + " " + answer)))
    assert (both.discussion.present, both.discussion.cell, both.discussion.words) == (True, 2, 34)
    answered = analyze(notebook(code(LENET), md(prompt + " Do you see any over-fitting?\n\nRESPONSE: " + answer + " " + answer +
                                                " " + answer + " " + answer + " " + answer)))
    assert (answered.discussion.present, answered.discussion.words) == (True, 86)  # the prompt's words not counted
    linked = analyze(notebook(code(LENET), md("The proposed model is better than the baseline, see [your grade](https://x.example), "
                                              "because batch normalization keeps its training stable over many epochs.")))
    assert linked.discussion.present is True  # a link's words are not words to the reader


def test_a_short_summary_under_a_heading_that_names_it_is_a_discussion():
    summary = "It seems like our model struggles with images of cats, dogs and birds."
    for cells in ([md("# Summary\n\n* " + summary)], [md("## 6. Key Observations"), md(summary)]):
        d = analyze(notebook(code(LENET), *cells)).discussion
        assert (d.present, d.cell, d.words) == (True, len(cells), 13)
    for heading in ("## Plot results", "## Training"):
        assert analyze(notebook(code(LENET), md(heading + "\n\n" + summary))).discussion.present is False
    long = ("We compared both models on the validation set and the wider model did better than the baseline in every "
            "run we made, by three points of accuracy on average.")
    d = analyze(notebook(code(LENET), md("## Conclusion\n" + summary), md(long))).discussion
    assert d.cell == 1  # the cell the student names the discussion, though shorter


def test_the_discussion_comes_after_both_models_are_defined():
    tutorial = ("GoogLeNet went deeper with inception modules, and very deep networks are prone to overfitting, "
                "which residual connections reduce because the gradient flows better through the identity path.")
    a = analyze(notebook(md("## Baseline"), code(LENET), code("train(LeNet())"), md(tutorial),
                         md("## Proposed model"), code(WIDENET), code("train(WideNet())")))
    assert (a.baseline, a.proposed) == ("LeNet", "WideNet")
    assert a.discussion.present is False
