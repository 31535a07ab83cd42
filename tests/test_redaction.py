"""A secret's value a command prints is stored masked: run output, agent
transcripts and dotfiles logs."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotfiles.materialize import RunLog
from dotfiles.models import DotfilesRun, Secret
from dotfiles.redaction import MASK, Redactor
from workspaces import runs

SECRET = "s3cr3t-Value"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=6),
)
def test_a_value_is_masked_wherever_the_pieces_split_it(before, after, cuts):
    text = f"{before}{SECRET}{after}{SECRET[:5]}"
    redactor = Redactor([SECRET, "ab"])  # "ab" is too short to mask
    pieces, at = [], 0
    for cut in sorted(set(cuts)):
        pieces.append(text[at:cut])
        at = max(at, cut)
    pieces.append(text[at:])
    stored = "".join(redactor.feed(p) for p in pieces) + redactor.flush()
    assert stored == Redactor([SECRET]).redact(text)
    assert SECRET not in stored and stored.count(MASK) >= 1


@pytest.mark.parametrize(
    "values, pieces, stored",
    [
        (["pass", "password123"], ["my pass", "word123 ok"], f"my {MASK} ok"),
        (["abcd", "xabcdy"], ["-xabcd", "y-"], f"-{MASK}-"),
        (["abcd", "xabcdy"], ["-xabcd", "z-"], f"-x{MASK}z-"),
        (["line1\nline2"], ['{"text": "line1', '\\nline2"}'], f'{{"text": "{MASK}"}}'),
    ],
)
def test_a_value_inside_another_or_escaped_as_json_is_masked_whole(values, pieces, stored):
    redactor = Redactor(values)
    assert "".join(redactor.feed(p) for p in pieces) + redactor.flush() == stored


def test_the_longer_value_wins_and_short_ones_stay():
    redactor = Redactor(["abcd", "abcdefgh", "on"])
    assert redactor.redact("x abcdefgh y abcd z on") == f"x {MASK} y {MASK} z on"


def add_secret(user, name, value):
    secret = Secret(user=user, name=name)
    secret.value = value
    secret.save()


@pytest.mark.django_db(transaction=True)
def test_a_run_that_prints_a_secret_stores_it_masked(workspace, wait_for_run):
    add_secret(workspace.user, "DEPLOY_TOKEN", "tok-9f8e7d6c5b4a")
    script = 'echo "token=$DEPLOY_TOKEN"; printf %s "$DEPLOY_TOKEN" | fold -w 3; echo; echo end'
    run = wait_for_run(runs.start_run(workspace, ["sh", "-c", script]))
    assert run.recorded_output.startswith(f"token={MASK}\n")
    assert "tok-9f8e7d6c5b4a" not in run.recorded_output
    assert run.recorded_output.endswith("end\n")


@pytest.mark.django_db
def test_a_dotfiles_log_stores_secrets_masked(make_user):
    user = make_user()
    add_secret(user, "NPM_TOKEN", "npm_abcdef123456")
    run = DotfilesRun.objects.create(user=user, trigger="apply now")
    log = RunLog(run)
    log.add("setup: using npm_abcd")
    log.add("ef123456 from the environment\n")
    run.refresh_from_db()
    assert run.log == f"setup: using {MASK} from the environment\n"
