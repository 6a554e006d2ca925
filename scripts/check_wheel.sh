#!/usr/bin/env bash
# Install as a new user would: build the wheel and sdist from a fresh clone of this repository
# (committed files only), install the wheel into a fresh virtualenv with the versions pinned in
# requirements-dev.txt but without torch, and run `manage.py check` (then migrate and one
# training run on the empty shop) in the README's project, tests/readme_project; then
# scripts/check_readme_project.py counts the lines the README has a shop paste (at most 10 of
# settings, 1 of urls), imports the shipped sample with `import_order_history --sample` and
# renders a product page, the basket and the home page, each with a recommendation block.
#
#   scripts/check_wheel.sh [GIT-REF]        (default HEAD; `make wheel-check`)
#   scripts/check_wheel.sh --worktree       (the working tree's files, tracked and new, not ignored)
#
# Needs the package registry (pip downloads setuptools for the isolated build and the pinned
# dependencies). REDIS_URL, when set, is the Redis the README project's cache and broker use
# for the training run; without it the training run is skipped (check and migrate touch no Redis).
# The pages are rendered with a Redis nobody listens on, so no key of this project lands in yours.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3.11}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== %s\n' "$*"; }

if [ "${1:-}" = "--worktree" ]; then
    step "copy of the working tree (tracked and new files, not ignored ones)"
    python3 - "$REPO" "$WORK/clone" <<'PY'
import shutil, subprocess, sys
from pathlib import Path
repo, dest = Path(sys.argv[1]), Path(sys.argv[2])
listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                        cwd=repo, capture_output=True, check=True).stdout.decode().split("\0")
for name in filter(None, listed):
    if (repo / name).is_file():  # a deleted file is still listed until the deletion is committed
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, dest / name)
PY
else
    REF=$(git -C "$REPO" rev-parse "${1:-HEAD}")
    step "fresh clone of $REF"
    git clone --quiet --no-checkout "$REPO" "$WORK/clone"
    git -C "$WORK/clone" checkout --quiet "$REF"
fi

step "build the sdist and the wheel (python -m build, isolated)"
"$PYTHON" -m venv "$WORK/build-venv"
"$WORK/build-venv/bin/pip" install --quiet --disable-pip-version-check "$(grep -E '^build==' "$WORK/clone/requirements-dev.txt" | cut -d' ' -f1)"
"$WORK/build-venv/bin/python" -m build --outdir "$WORK/dist" "$WORK/clone" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
ls -l "$WORK/dist"
WHEEL=$(ls "$WORK"/dist/*.whl)
python3 - "$WHEEL" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
kinds = {"templates": ".html", "migrations": "/migrations/0", "templatetags": "/templatetags/", "commands": "/commands/"}
print("wheel:", len(names), "files;", ", ".join(f"{k} {sum(s in n for n in names)}" for k, s in kinds.items()))
PY

step "fresh virtualenv: the wheel with requirements-dev.txt's pins, torch left out"
"$PYTHON" -m venv "$WORK/venv"
V="$WORK/venv/bin"
grep -vE '^torch==' "$WORK/clone/requirements-dev.txt" >"$WORK/requirements-no-torch.txt"
"$V/pip" install --quiet --disable-pip-version-check -r "$WORK/requirements-no-torch.txt" "$WHEEL[postgres]"
"$V/pip" list --disable-pip-version-check 2>/dev/null | grep -iE '^(django|django-oscar|django-oscar-personalization|celery|torch) '
if "$V/python" -c "import torch" 2>/dev/null; then echo "FAIL: torch is importable"; exit 1; fi
echo "import torch fails, as it should: $("$V/python" -c 'import torch' 2>&1 | tail -1)"

step "the README's project (tests/readme_project) on the installed wheel"
cp -r "$WORK/clone/tests/readme_project" "$WORK/shop"
cd "$WORK/shop"
export SHOP_DB="$WORK/shop.sqlite3"
# a shop's own secret key, as in production (the project's fallback is a published one: recommender.W004)
DJANGO_SECRET_KEY=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(50))')
export DJANGO_SECRET_KEY
"$V/python" -c "import recommender, segmentation; print('recommender from', recommender.__file__)"
"$V/python" -c "import recommender; assert '/site-packages/' in recommender.__file__, 'not the installed wheel'"
"$V/python" manage.py check --fail-level WARNING
"$V/python" manage.py migrate --verbosity 0 && echo "migrate: ok"
if [ -n "${REDIS_URL:-}" ]; then
    "$V/python" manage.py train_recommenders --no-progress
else
    echo "REDIS_URL unset: training run skipped"
fi

step "the README's install: lines to paste, the sample imported, the shop's pages with their blocks"
REDIS_URL=redis://127.0.0.1:9/0 "$V/python" "$WORK/clone/scripts/check_readme_project.py" "$WORK/clone/README.md" .
step "wheel check passed"
