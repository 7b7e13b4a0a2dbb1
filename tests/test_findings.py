"""Collecting the chapters' verdicts for the Findings page, the landing page and the recipe (``bookdriver.findings``).

Run: ``.venv/bin/pytest tests/test_findings.py`` (seconds).
"""

import re

import nbformat
import pytest
import yaml
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from bookdriver import findings
from bookdriver.findings import MIME_TYPE, findings_markdown, front_matter, substitutions, verdict_keys, verdicts_in
from vae_utils.claims import stats as S
from vae_utils.claims import verdicts as V
from vae_utils.claims.records import ClaimRecord


def record(id_, claim="A warm-up beats a constant rate", direction=1, delta=0.1, **kw):
    """A claim's record as a chapter's table declares it (defaults for the fields a test leaves out)."""
    kw = {"unit": "nats", "anchor": "lr-schedules", "topic": "learning rate"} | kw
    return ClaimRecord(id_, claim, direction, delta, what_to_do={"supported": "Use a warm-up."}, **kw)


def _verdict(outcome_effect=S.one_sample([1.0, 1.2, 0.9, 1.1]), id_="lr-warmup"):
    fam = V.Family("05_learning_rate", records=[record(id_)])
    fam.add(id_, outcome_effect)
    return fam.finalize()[0]


def test_the_verdicts_glued_by_a_chapter_are_read_back_from_its_executed_notebook():
    """The outputs vae_utils.claims.verdicts.publish leaves in a real IPython shell hold the record the
    driver reads (MIME_TYPE, under glue's prefix); other outputs are ignored."""
    v = _verdict()
    assert V.MIME_TYPE == MIME_TYPE
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x")]
    InteractiveShell.instance()
    with capture_output() as cap:
        V.publish(v, show=True)
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "3"})]
    nb.cells[0].outputs += [
        nbformat.v4.new_output("display_data", data=o.data, metadata=o.metadata) for o in cap.outputs
    ]
    [record] = verdicts_in(nb)
    assert record["id"] == "lr-warmup" and record["outcome"] == "supported" and record["anchor"] == "lr-schedules"


def _shown(markup: str) -> tuple:
    """(claim, label, link, words, what follows) of the first outcome link in ``markup``, escapes removed."""
    m = re.search(r'data-claim="([^"]+)" data-outcome="([^"]+)" href="([^"]*)">([^<]*)</a>([^<|]*)', markup)
    return (*m.groups()[:4], m.group(5).replace("\\", "").rstrip()) if m else None


def test_substitutions_state_each_verdicts_outcome_effect_and_advice_and_not_run_for_missing_ones():
    record = {**_verdict().to_dict(), "page": "05_learning_rate"}
    subs = substitutions([record], wanted={"v_lr_warmup", "v_bs_gap"})
    assert _shown(subs["v_lr_warmup"]) == (
        "lr-warmup",
        "supported",
        "05_learning_rate.html#lr-schedules",
        "supported",
        "",
    )
    assert subs["v_lr_warmup_outcome"] == "supported" and subs["v_lr_warmup_todo"] == "Use a warm-up."
    assert subs["v_lr_warmup_effect"].startswith("mean: 1.05 (") and "CI" in subs["v_lr_warmup_effect"]
    assert subs["v_bs_gap"] == "not run" and subs["v_bs_gap_effect"] == "not run in this build"


def test_a_page_names_the_verdicts_it_uses_and_gets_them_in_its_front_matter():
    text = "---\ntitle: Recipe\n---\n# Recipe\nWarm-up: {{ v_lr_warmup }} ({{ v_lr_warmup_effect }}).\n"
    assert verdict_keys(text) == {"v_lr_warmup"}
    out = front_matter(text, {"v_lr_warmup": "supported"})
    meta = yaml.safe_load(out.split("---\n")[1])
    assert meta == {"title": "Recipe", "myst": {"substitutions": {"v_lr_warmup": "supported"}}}
    assert out.endswith("# Recipe\nWarm-up: {{ v_lr_warmup }} ({{ v_lr_warmup_effect }}).\n")
    assert front_matter("# Plain\n", {"a": "b"}).startswith("---\nmyst:\n  substitutions:\n    a: b\n---\n# Plain")


def test_the_findings_page_lists_every_verdict_under_its_chapter_with_a_link_to_its_section():
    records = [{**_verdict().to_dict(), "page": "05_learning_rate"}]
    md = findings_markdown(records, {"05_learning_rate": "Learning rate"})
    assert '<td>A warm-up beats a constant rate<br><small><a href="05_learning_rate.html">Learning rate</a>' in md
    row = md.split("<tbody>")[1]
    assert _shown(row)[:4] == ("lr-warmup", "supported", "05_learning_rate.html#lr-schedules", "supported")
    assert "<td>Use a warm-up.</td>" in md and "Δ = 0.1" in md
    assert "No chapter" in findings_markdown([])


def test_quantities_a_chapter_publishes_become_q_substitutions_and_missing_ones_say_so():
    values = [{"id": "lr-best", "text": "4 × 10⁻³", "value": 0.004, "page": "05_learning_rate"}]
    subs = substitutions([], wanted={"q_lr_best", "q_bcrit"}, values=values)
    assert subs == {"q_lr_best": "4 × 10⁻³", "q_bcrit": "not measured in this build"}
    assert verdict_keys("Start at {{ q_lr_best }}; {{ v_lr_warmup_todo }}") == {"q_lr_best", "v_lr_warmup"}


def test_publish_value_glues_the_text_and_a_record_the_driver_reads():
    """In a real IPython shell: the printed text is glued under the id, and the record (id, text,
    number) under <id>-value with the mime type the driver reads; a bad id is refused by name."""
    InteractiveShell.instance()
    with capture_output() as cap:
        assert V.publish_value("lr-best", "0.004", 0.004, chapter="05_learning_rate") == "0.004"
    glued = {o.metadata["scrapbook"]["name"]: o.data for o in cap.outputs}
    assert glued["lr-best"]["application/papermill.record/text/plain"] == "'0.004'"
    record = glued["lr-best-value"][f"application/papermill.record/{V.VALUE_MIME_TYPE}"]
    assert record == {"id": "lr-best", "text": "0.004", "value": 0.004, "chapter": "05_learning_rate", "anchor": None}
    with pytest.raises(ValueError, match="id='Best LR' is not allowed"):
        V.publish_value("Best LR", "x")


def test_the_at_scale_table_goes_line_by_line_through_the_recipe_and_says_whether_each_holds_at_scale():
    def judged(id_, effect, **more):
        return {**_verdict(effect, id_).to_dict(), "page": "x", **more}

    up, flat = S.one_sample([1.0, 1.2, 0.9, 1.1]), S.one_sample([0.01, -0.02, 0.0, 0.01])
    verdicts = [
        judged("lr-warmup", up, recipe="Warm-up."),
        judged("fm-lr-warmup", up),  # supported twice: holds
        judged("opt-x", up, recipe="Adam or SGD?"),
        judged("fm-opt-x", flat),  # supported against equivalent: does not hold
        judged(
            "fm-other", flat, repeats="opt-x", claim="Adam beats SGD with momentum"
        ),  # a second re-test, by `repeats`
        judged("fm-alone", up),  # no digits twin: not compared
        judged("beta-y", S.one_sample([1.0, -1.0, 2.0, -2.0])),
        judged("fm-beta-y", up),  # inconclusive on digits, supported here
    ]
    values = [
        {"id": "fm-opt-x-note", "text": "momentum here"},
        {"id": "fm-lr-interior", "text": "inside the grid"},
        {"id": "fm-bcrit", "text": "300 (95% CI 200 to 450)"},
        {"id": "bs-bcrit", "text": "70 (95% CI 60 to 81)"},
        {"id": "lr-interior", "text": "at the low edge"},
        {"id": "lr-break-ratio", "text": "4"},  # measured on digits only: no row
    ]
    md = findings.scale_comparison_markdown(verdicts, values)
    header, *rows = [line for line in md.splitlines() if line.startswith("| ")]
    cells = [r.replace("\\", "").split(" | ") for r in rows]
    assert md.startswith(":::{table}") and ":name: tab-fm-compare" in md and "holds at scale?" in header
    assert [c[4] for c in cells[:5]] == [
        "holds",
        "does not hold",
        "does not hold",
        "not compared",
        "undecided on digits",
    ]
    assert cells[0][0] == "| Warm-up." and cells[1][0] == cells[2][0] == "| Adam or SGD?"  # the Recipe line of the twin
    assert "Adam beats SGD with momentum" in rows[2] and "momentum here" in rows[1]
    assert "no effect that matters" in rows[1]
    assert "Where the best learning rate lies (a quantity) | at the low edge | inside the grid" in md
    assert "The critical batch size (a quantity) | 70 (95% CI 60 to 81) | 300 (95% CI 200 to 450)" in md
    assert "Breaking rate over the best rate" not in md
    assert "no at-scale verdicts" in findings.scale_comparison_markdown(verdicts[:1], [])
    alone = findings.scale_comparison_markdown([judged("fm-lr-slow", up, repeats="lr-slow")], [])  # digits not built
    assert "| Smaller is slower\\. |" in alone and "not in this build" in alone


def _conditions(fixed_updates, interaction):
    """bs-gap judged under two budgets, with or without an interaction between them."""
    r = record("bs-gap", "Larger batches reach a worse test ELBO", -1, 0.1, anchor="bs-gap", condition="the budget")
    fam = V.Family("04_batch_size", records=[r])
    effects = {"fixed epochs": S.one_sample([-1.0, -1.2, -0.9, -1.1, -1.05]), "fixed updates": fixed_updates}
    fam.add("bs-gap", effects, interaction=interaction)
    return fam.finalize()[0].to_dict()


def test_a_claim_judged_under_conditions_reads_with_each_conditions_outcome():
    """'depends on X (a: ...; b: ...)' with a significant interaction, 'mixed (...)' without one, and
    the plain outcome when the conditions agree: never the overall 'inconclusive' alone."""
    positive = S.one_sample([1.0, 1.2, 0.9, 1.1, 1.05])
    depends = findings.outcome_link(_conditions(positive, S.one_sample([2.0, 2.4, 1.9, 2.2, 2.1])))
    detail = " (fixed epochs: supported; fixed updates: the opposite holds)"
    href = "04_batch_size.html#bs-gap"
    assert _shown(depends) == ("bs-gap", "depends on the budget", href, "depends on the budget", detail)
    mixed = findings.outcome_link(_conditions(positive, S.one_sample([0.3, -0.5, 0.9, -0.8, 0.2])))
    assert _shown(mixed) == ("bs-gap", "mixed", href, "mixed", detail)
    same = findings.outcome_link(_conditions(S.one_sample([-1.0, -1.1, -0.95, -1.2, -1.0]), None))
    assert _shown(same) == ("bs-gap", "supported", href, "supported", "")
    assert _shown(substitutions([_conditions(positive, None)])["v_bs_gap"])[1] == "mixed"


def test_the_effect_of_a_claim_under_conditions_lists_each_conditions_estimate():
    """The recipe's '(effect)' of a claim judged under two budgets is each budget's estimate, never 'no estimate'."""
    v = _conditions(S.one_sample([1.0, 1.2, 0.9, 1.1, 1.05]), None)
    text = findings.effect_text(v)
    assert text.startswith("fixed epochs: mean: −1.05 (") and "% CI" in text and "; fixed updates: mean: 1.05 (" in text
    assert substitutions([v])["v_bs_gap_effect"] == text
