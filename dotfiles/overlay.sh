# Writes the dotfiles overlay into the home, as the box user, without ever
# destroying what it did not write. Run by dotfiles/materialize.py with
# `sh -c "$(cat overlay.sh)" overlay <file count> <overlay hash>`, the overlay
# on stdin as a tar: files/<path> for each file, and manifest, lines
# "<sha256><TAB><path>".
#
# ~/.spoon/overlay-manifest says what the overlay wrote last: "f<TAB><sha256>
# <TAB><path>" per file, "d<TAB>-<TAB><path>" per folder it made (a bare path
# per line: an earlier Spoon's, hash unknown).
#   - A home file the overlay is about to replace, and did not write, is
#     moved to ~/.spoon/replaced/<path> (modes kept), and the log says so.
#     One it wrote but that was changed in the box since is kept there too,
#     as <path>.edited-<time>.
#   - A file that leaves the overlay goes only if it is still what the
#     overlay wrote, and what it replaced comes back; a changed one is left
#     alone, and the log says so. Folders the overlay made go once empty.
# Symlinks in the home are never written through: they are moved aside like
# any other file (a link to a folder, on the way to a file, is followed, in
# the user's own rights).
set -eu
cd ~
tab=$(printf '\t')
stamp=$(date +%Y%m%d-%H%M%S)
work=.spoon/apply
# Whatever happens, nothing of this apply's own is left behind.
trap 'rm -rf "$HOME/$work"' EXIT
rm -rf "$work"

# A home without room fails here, before anything in it changed: the
# files are unpacked beside it first, and moved into place at the end.
no_room() {
    echo "spoon: your home has no room for your dotfiles ($1): nothing in it was changed." \
        "Free some space (or ask for a larger quota), then apply again." >&2
    exit 28
}
# "No space left on device" or "Disk quota exceeded", when $1 says either.
full() { printf '%s\n' "$1" | grep -m1 -o 'No space left on device\|Disk quota exceeded'; }
if ! failed=$(mkdir -p "$work" .spoon/replaced 2>&1 && cat 2>&1 >"$work/overlay.tar" &&
    tar -x --no-same-owner -C "$work" -f "$work/overlay.tar" 2>&1); then
    if why=$(full "$failed"); then no_room "$why"; fi
    echo "spoon: the overlay could not be unpacked: $failed" >&2
    exit 1
fi
mv "$work/manifest" "$work/new"
touch .spoon/overlay-manifest
awk -F'\t' 'NF == 1 && $0 != "" { print "f\t?\t" $0; next } { print }' \
    .spoon/overlay-manifest >"$work/old"
cut -f2 "$work/new" | LC_ALL=C sort >"$work/new-paths"
awk -F'\t' '$1 == "f" { print $3 }' "$work/old" | LC_ALL=C sort >"$work/old-paths"

# "<sha256><TAB><path>" of the paths on stdin that are regular files (not links).
hash_files() {
    while IFS= read -r path; do
        if [ -f "$path" ] && [ ! -L "$path" ]; then printf '%s\0' "$path"; fi
    done | xargs -0 -r sha256sum --zero -- | tr '\0' '\n' | sed 's/^\([0-9a-f]*\)  /\1\t/'
}
LC_ALL=C sort -u "$work/new-paths" "$work/old-paths" | hash_files >"$work/home"

# Move $1 under ~/.spoon/replaced (a file, a folder or a link, as it is).
keep_aside() {
    dest=".spoon/replaced/$1$2"
    if [ -e "$dest" ] || [ -L "$dest" ]; then dest="$dest.$stamp"; fi
    mkdir -p -- "$(dirname -- "$dest")"
    mv -- "$1" "$dest"
    echo "spoon: kept $3 ~/$1 as ~/$dest"
}

# 1. Files that left the overlay: "<written sum><TAB><sum now, or -><TAB><path>".
LC_ALL=C comm -23 "$work/old-paths" "$work/new-paths" >"$work/gone"
awk -F'\t' 'FILENAME == ARGV[1] { home[$2] = $1; next }
    FILENAME == ARGV[2] { if ($1 == "f") wrote[$3] = $2; next }
    { now = ($0 in home) ? home[$0] : "-"; print wrote[$0] "\t" now "\t" $0 }' \
    "$work/home" "$work/old" "$work/gone" >"$work/removals"
while IFS="$tab" read -r wrote now path; do
    if [ "$now" = - ] && { [ -e "$path" ] || [ -L "$path" ]; }; then
        echo "spoon: left ~/$path alone: it is no longer the file Spoon wrote"
        continue
    elif [ "$now" != - ] && [ "$now" != "$wrote" ]; then
        echo "spoon: left ~/$path alone: it changed in your box since Spoon wrote it"
        continue
    elif [ "$now" != - ]; then
        rm -f -- "$path"
        echo "spoon: removed ~/$path"
    fi
    if [ -e ".spoon/replaced/$path" ] || [ -L ".spoon/replaced/$path" ]; then
        mkdir -p -- "$(dirname -- "$path")"
        mv -- ".spoon/replaced/$path" "$path"
        echo "spoon: put back your ~/$path"
    fi
done <"$work/removals"

# 2. Folders the overlay made that no overlay file needs now, once empty.
awk -F'\t' '{ path = $2; while (sub(/\/[^\/]*$/, "", path)) print path }' "$work/new" |
    LC_ALL=C sort -u >"$work/needed"
awk -F'\t' '$1 == "d" { print $3 }' "$work/old" | LC_ALL=C sort -u >"$work/made"
LC_ALL=C comm -23 "$work/made" "$work/needed" | LC_ALL=C sort -r | while IFS= read -r dir; do
    if [ -d "$dir" ] && [ ! -L "$dir" ] && rmdir -- "$dir" 2>/dev/null; then
        echo "spoon: removed the empty folder ~/$dir"
    fi
done

# 3. What stands where overlay files go: the home's own files and folders,
#    files changed since Spoon wrote them, links.
awk -F'\t' 'FILENAME == ARGV[1] { home[$2] = $1; next }
    FILENAME == ARGV[2] { if ($1 == "f") wrote[$3] = $2; next }
    !($2 in home) { print "other\t" $2; next }
    !($2 in wrote) { print "theirs\t" $2; next }
    home[$2] != wrote[$2] && home[$2] != $1 { print "edited\t" $2 }' \
    "$work/home" "$work/old" "$work/new" >"$work/in-the-way"
while IFS="$tab" read -r what path; do
    case $what in
    theirs) keep_aside "$path" "" your ;;
    edited) keep_aside "$path" ".edited-$stamp" "the changes made in your box to" ;;
    other) if [ -e "$path" ] || [ -L "$path" ]; then keep_aside "$path" "" your; fi ;;
    esac
done <"$work/in-the-way"

# 4. The folders overlay files go in: made where missing (and recorded), a
#    file in the way kept aside; folders it made before stay recorded.
: >"$work/dirs"
while IFS= read -r dir; do
    if [ -d "$dir" ]; then
        if grep -qxF -- "$dir" "$work/made"; then printf 'd\t-\t%s\n' "$dir" >>"$work/dirs"; fi
        continue
    fi
    if [ -e "$dir" ] || [ -L "$dir" ]; then keep_aside "$dir" "" your; fi
    mkdir -- "$dir"
    printf 'd\t-\t%s\n' "$dir" >>"$work/dirs"
done <"$work/needed"

# 5. The files themselves (moved from where they were unpacked, which takes
#    no more room; through a link to a folder, with the user's own rights),
#    and the record of what the overlay wrote.
while IFS= read -r path; do
    mv -fT -- "$work/files/$path" "$path"
done <"$work/new-paths"
{
    awk -F'\t' '{ print "f\t" $1 "\t" $2 }' "$work/new"
    cat "$work/dirs"
} >"$work/manifest.new"
mv -f "$work/manifest.new" .spoon/overlay-manifest  # whole, or not at all
echo "$2" >.spoon/overlay-hash
echo "spoon: wrote $1 overlay files"
