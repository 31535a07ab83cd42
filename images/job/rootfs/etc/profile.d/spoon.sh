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

alias ls='ls --color=auto'
alias ll='ls -alF'
alias la='ls -A'
alias grep='grep --color=auto'
alias vim='nvim'

if [ -n "${BASH_VERSION:-}" ]; then
    HISTSIZE=50000
    HISTFILESIZE=100000
    HISTCONTROL=ignoreboth
    shopt -s histappend checkwinsize
    [ -r /usr/share/bash-completion/bash_completion ] && . /usr/share/bash-completion/bash_completion
    for f in /usr/share/doc/fzf/examples/key-bindings.bash /usr/share/fzf/shell/key-bindings.bash; do
        [ -r "$f" ] && . "$f" && break
    done
    command -v zoxide >/dev/null && eval "$(zoxide init bash)"
    PS1='\[\e[1;32m\]\u@spoon\[\e[0m\]:\[\e[1;34m\]\w\[\e[0m\]\$ '
fi
