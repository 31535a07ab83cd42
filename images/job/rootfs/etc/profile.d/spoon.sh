# Spoon's shell defaults. Everything here works with an empty home, and a
# user's own dotfiles, read later, override any of it.

# What users install lands in their home, so it survives the box.
export PATH="$HOME/.local/bin:$HOME/.cargo/bin:$HOME/go/bin:$PATH"
export NPM_CONFIG_PREFIX="$HOME/.local"
# pip installs to ~/.local by itself when it may not write the system's
# packages; this lets it do so next to Debian's own (in a venv it is moot).
export PIP_BREAK_SYSTEM_PACKAGES=1
export CARGO_HOME="$HOME/.cargo"
export GOPATH="$HOME/go"
export LESS="-R"

case $- in
*i*) ;;
*) return 0 2>/dev/null || true ;;
esac

# History, completion, aliases and the prompt: a home that still has
# Debian's ~/.bashrc gets them here, and that ~/.bashrc's own PS1 and ls win.
[ -r /usr/local/share/spoon/interactive.sh ] && . /usr/local/share/spoon/interactive.sh
