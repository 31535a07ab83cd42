# The dotfiles repository step, run in the box as its user by
# dotfiles/materialize.py:
#   sh -c "$(cat clone.sh repository.sh)" repository <url> <ref> <setup> <limit> <hash> [<arg>...]
# with INSTALL_SCRIPTS, NOT_LINKED, ACCESS and TOKEN_USERNAME in the
# environment, and a private repository's credential as its input.
#
# Clones the repository into ~/.dotfiles (clone.sh), then sets it up by the
# first of:
#   - its setup script (<setup>, or the first of INSTALL_SCRIPTS found), run
#     with the arguments given, as separate words, for at most <limit> s;
#   - rcm: an `rcrc` at its top, or files named as dotfiles without their dot
#     (bashrc, vimrc, ...): rcup;
#   - yadm: a `.config/yadm` or `.yadm` folder: yadm clone, then its bootstrap;
#   - GNU Stow: no dot-files at its top, and folders (packages) that hold
#     some: stow each package;
#   - otherwise its top-level dot-files are linked into the home.
# A file of the home in the way is moved to <name>.bak (.bak.2 and on when
# that is taken), and the log says so. A setup that changed nothing in the
# home says so as a warning ("spoon: warning: ..."), with the likely reasons.
set -u
url=$1 ref=$2 setup=$3 limit=$4 hash=$5
shift 5
cd ~ || exit 2
mkdir -p .spoon
rm -rf .dotfiles.new
case ${ACCESS:-} in
token) with=" with your token" ;;
deploy_key) with=" with your deploy key" ;;
*) with="" ;;
esac
echo "spoon: cloning $url${ref:+ at $ref}$with"
clone_repository "$url" "$ref" .dotfiles.new || exit 2
rm -rf .dotfiles && mv .dotfiles.new .dotfiles

# What the home looks like (three levels deep, without the clone, Spoon's
# own folder, workspaces and caches): compared after the setup.
snapshot() {
    find ~ -mindepth 1 -maxdepth 3 \( -path ~/.dotfiles -o -path ~/.spoon -o -path ~/Code \
        -o -path ~/.cache \) -prune -o -printf '%P %y %s %T@ %l\n' 2>/dev/null | LC_ALL=C sort
}
snapshot >.spoon/home-before

# Is ~/$1 a file the repository's would replace: not one of its links, and
# (with $2, the repository's own copy) not already the same bytes?
in_the_way() {
    [ -e ~/"$1" ] || [ -L ~/"$1" ] || return 1
    if [ -L ~/"$1" ]; then
        case $(readlink -m ~/"$1") in "$HOME/.dotfiles/"*) return 1 ;; esac
    elif [ -n "${2:-}" ] && [ -f ~/"$1" ] && cmp -s ~/"$1" "$2"; then
        return 1
    fi
    return 0
}
keep_aside() {
    bak=~/"$1.bak" n=1
    while [ -e "$bak" ] || [ -L "$bak" ]; do n=$((n + 1)); bak=~/"$1.bak.$n"; done
    mv -- ~/"$1" "$bak"
    echo "spoon: moved your ~/$1 to ~${bak#"$HOME"} (it stays there)"
}
# Keep aside what stands where the files listed on stdin (home-relative) go;
# with $1, a folder where the repository's own copies are, by the same names.
clear_the_way() {
    while IFS= read -r rel; do
        if in_the_way "$rel" "${1:+$1/$rel}"; then keep_aside "$rel"; fi
    done
}
# Names rcm takes for dotfiles without their dot.
has_undotted() {
    for name in bashrc zshrc vimrc gitconfig tmux.conf inputrc profile aliases; do
        [ -e "$name" ] && return 0
    done
    return 1
}
# Run a command with the setup's limit, its output in the log and kept.
run_limited() {
    echo "spoon: running ${1#./}$(shift; [ $# -eq 0 ] || printf ' %s' "$@") (at most $limit s)"
    { timeout -k 5 "$limit" "$@" </dev/null; echo $? >~/.spoon/setup-code; } 2>&1 |
        tee ~/.spoon/setup-output
    # A question ends without a newline; Spoon's next words start a line.
    [ -z "$(tail -c 1 ~/.spoon/setup-output)" ] || echo
    code=$(cat ~/.spoon/setup-code)
    if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
        echo "spoon: $1 ran longer than $limit s and was stopped"
    elif [ "$code" -ne 0 ]; then
        question_hint "spoon: hint:"
    fi
    return "$code"
}
# When the setup's last words were a question, say why it had no answer;
# $1 starts the line.
question_hint() {
    asked=$(grep -v '^[[:space:]]*$' ~/.spoon/setup-output | tail -1 | sed 's/[[:space:]]*$//')
    case $asked in
    *\? | *"[y/N]"* | *"[Y/n]"* | *"(y/n)"* | *"[y/n]"* | *:)
        echo "$1 it seems to have asked \"$asked\" and had no answer: its input is closed." \
            "Give it the arguments that answer it (such as --force), or run it in your terminal."
        ;;
    esac
}

cd ~/.dotfiles || exit 2
: >~/.spoon/setup-output
script="" how=""
if [ -n "$setup" ]; then
    real=$(realpath -e -- "$setup" 2>/dev/null) ||
        { echo "spoon: $setup is not in the repository"; exit 2; }
    case $real in
    "$HOME/.dotfiles/"*) script=$setup ;;
    *) echo "spoon: $setup points outside the repository"; exit 2 ;;
    esac
else
    for candidate in $INSTALL_SCRIPTS; do
        if [ -f "$candidate" ]; then script=$candidate; break; fi
    done
fi
if [ -z "$script" ] && [ $# -gt 0 ]; then
    echo "spoon: the setup arguments ($*) are for a setup script; this repository has none"
fi
dot_files=$(find . -mindepth 1 -maxdepth 1 -name '.*' ! -name .git ! -name '.git?*' | head -1)
if [ -n "$script" ]; then
    how=script
    chmod u+x -- "$script"
    run_limited "./$script" "$@" || exit $?
elif [ -f rcrc ] || { [ -z "$dot_files" ] && has_undotted; }; then
    how=rcm
    echo "spoon: an rcm repository (an rcrc, or files named without their dot): rcup"
    # Without an rcrc, what is not a dotfile stays out (rcm would link it).
    if [ -f rcrc ]; then
        export RCRC="$HOME/.dotfiles/rcrc"
        set --
    else
        export RCRC=/dev/null
        set -- -x 'README*' -x 'LICENSE*' -x '*.md' -x Makefile
    fi
    lsrc "$@" -d ~/.dotfiles | cut -d: -f1 | sed "s|^$HOME/||" | clear_the_way
    run_limited rcup "$@" -f -v -d ~/.dotfiles || exit $?
elif [ -d .config/yadm ] || [ -d .yadm ]; then
    how=yadm
    echo "spoon: a yadm repository: yadm clone, then its bootstrap"
    git ls-files | clear_the_way ~/.dotfiles
    # From the home: yadm resets its index for ".", the folder it is run in.
    (cd ~ && yadm clone -f --no-bootstrap -w ~ ~/.dotfiles </dev/null 2>&1) || exit $?
    if [ -x ~/.config/yadm/bootstrap ] || [ -x ~/.yadm/bootstrap ]; then
        (cd ~ && run_limited yadm bootstrap) || exit $?
    fi
elif [ -z "$dot_files" ] && packages=$(find . -mindepth 2 -maxdepth 2 -name '.*' ! -path './.git*' |
    cut -d/ -f2 | LC_ALL=C sort -u) && [ -n "$packages" ]; then
    how=stow
    # shellcheck disable=SC2086 # package names are words
    echo "spoon: GNU Stow packages: stow" $packages
    for package in $packages; do
        (cd "$package" && find . \( -type f -o -type l \) | sed 's|^\./||') | clear_the_way
    done
    # shellcheck disable=SC2086 # package names are words
    # No folding: folders stay the home's own, only files are links into the clone.
    run_limited stow --no-folding -v -d ~/.dotfiles -t ~ $packages || exit $?
else
    how=links
    echo "spoon: no install script; linking the repository's dot-files into the home"
    for f in .[!.]* ..?*; do
        [ -e "$f" ] || continue
        case " $NOT_LINKED " in *" $f "*) continue ;; esac
        if in_the_way "$f"; then keep_aside "$f"; fi
        ln -sfn -- ~/.dotfiles/"$f" ~/"$f"
        echo "spoon: linked ~/$f"
    done
fi

snapshot >~/.spoon/home-after
if cmp -s ~/.spoon/home-before ~/.spoon/home-after; then
    echo "spoon: warning: the setup changed nothing in your home"
    question_hint "spoon: warning:"
    if [ "$how" = links ]; then
        echo "spoon: warning: the repository has no files starting with '.' to link. If it is" \
            "laid out for a dotfiles manager, Spoon knows rcm (an rcrc), yadm and GNU Stow;" \
            "otherwise, give it an install script."
    fi
fi
rm -f ~/.spoon/home-before ~/.spoon/home-after ~/.spoon/setup-output ~/.spoon/setup-code
mkdir -p ~/.spoon && echo "$hash" >~/.spoon/env-hash
