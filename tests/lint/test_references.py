"""Every repository path named in a comment, a docstring or a document exists.

Comments and docs point readers at files ("see gunicorn_conf/base.py"); after a move, a
pointer that leads nowhere is worse than none. This reads every text file git knows (tracked,
or new and not ignored), finds the words that look like paths into this repository's folders,
and checks each against the working tree.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from harness.launch import ROOT

# Top-level folders (and nginx's own, which its configs name relative to nginx/): a word that
# starts with one of these and a slash is a path into the repository.
FOLDERS = (
    r"\.ci|app|gunicorn_conf|nginx|loadtest|harness|deploy|docs|tests|tools|monitoring"
    r"|examples|snippets|sites|sites-tls|static"
)
PATH = re.compile(rf"(?<![\w./@:-])((?:{FOLDERS})/[\w.*@-]+(?:/[\w.*@-]+)*/?)")
# Generated documents name artifacts of the run that made them, not repository files.
GENERATED = ("docs/report/", "docs/bench/")


def text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = []
    for name in listed:
        path = ROOT / name
        if name.startswith(GENERATED) or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" not in data[:4096]:
            files.append(path)
    return files


def resolves(word: str, source: Path) -> bool:
    """A path counts when it exists from the repository's root, from the naming file's own
    folder (relative links in docs/), or from nginx/ (its includes are relative to it)."""
    word = word.rstrip(".")
    for base in (ROOT, source.parent, ROOT / "nginx"):
        if any(base.glob(word)) if "*" in word else (base / word).exists():
            return True
    return False


def test_every_path_named_in_comments_and_docs_exists():
    files = text_files()
    assert len(files) > 50, "git listed the repository's files"
    missing = []
    for source in files:
        for number, line in enumerate(source.read_text(errors="replace").splitlines(), 1):
            for word in PATH.findall(line):
                if not resolves(word, source):
                    missing.append(f"{source.relative_to(ROOT)}:{number}: {word}")
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)


def test_the_path_finder_sees_paths_and_only_paths():
    """The check above is only as good as its pattern: it must find these, and not these."""
    found = PATH.findall(
        "see gunicorn_conf/base.py, (nginx/snippets/upstream/keepalive.conf) and "
        "`tests/unit/`; include snippets/location/proxy.conf;"
    )
    assert found == [
        "gunicorn_conf/base.py",
        "nginx/snippets/upstream/keepalive.conf",
        "tests/unit/",
        "snippets/location/proxy.conf",
    ]
    assert PATH.findall("http://127.0.0.1:8080/sync/api/whoami /srv/app/x.py x/app/y") == []
    assert not resolves("app/" + "no_such_module.py", ROOT / "README.md")
    assert resolves("report/report.md", ROOT / "docs" / "measuring.md")
