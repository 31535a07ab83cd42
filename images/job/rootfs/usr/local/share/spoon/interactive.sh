# Spoon's interactive shell: history, completion, fzf and zoxide, aliases,
# and the prompt. Read by /etc/profile.d/spoon.sh and by the ~/.bashrc a new
# home starts with; a user's own ~/.bashrc (or dotfiles) overrides any of it.
[ -n "${BASH_VERSION:-}" ] || return 0

HISTSIZE=50000
HISTFILESIZE=100000
HISTCONTROL=ignoreboth
shopt -s histappend checkwinsize
if [ -z "${__spoon_completion:-}" ] && [ -r /usr/share/bash-completion/bash_completion ]; then
    . /usr/share/bash-completion/bash_completion
    __spoon_completion=1
fi
for __spoon_f in /usr/share/doc/fzf/examples/key-bindings.bash /usr/share/fzf/shell/key-bindings.bash; do
    [ -r "$__spoon_f" ] && . "$__spoon_f" && break
done
unset __spoon_f
if command -v zoxide >/dev/null && [ -z "${__spoon_zoxide:-}" ]; then
    eval "$(zoxide init bash)"
    __spoon_zoxide=1
fi

alias grep='grep --color=auto'
alias vim='nvim'
if command -v exa >/dev/null; then
    # exa, as eza and exa users have it: ls that knows git and draws icons.
    alias ls='exa --group-directories-first'
    alias ll='exa -l --git --group-directories-first'
    alias la='exa -la --git --group-directories-first'
    alias lt='exa --tree --level=2 --group-directories-first'
else
    alias ls='ls --color=auto'
    alias ll='ls -alF'
    alias la='ls -A'
fi

# The prompt: the last command's exit status when it failed, the workspace
# when in one, user, folder, git branch and state. Drawn with the Nerd Font
# the terminal page loads. Kept under 50 ms in large checkouts
# (bench/prompt.py): the branch is one quick git call, staged changes one
# more, and the check for unstaged ones, which looks at every file, gets
# 20 ms: past that the state shows as "…".
__spoon_prompt() {
    local code=$? red='\[\e[31m\]' green='\[\e[32m\]' blue='\[\e[34m\]' yellow='\[\e[33m\]'
    local magenta='\[\e[35m\]' dim='\[\e[2m\]' bold='\[\e[1m\]' reset='\[\e[0m\]'
    local line="" top branch state="" where
    if [ "$code" -ne 0 ]; then line+="${red}✘ $code${reset} "; fi
    if top=$(git rev-parse --show-toplevel --abbrev-ref HEAD 2>/dev/null); then
        branch=${top##*$'\n'}
        top=${top%%$'\n'*}
        [ "$branch" = HEAD ] && branch=$(git rev-parse --short HEAD 2>/dev/null)
        timeout 0.02 git --no-optional-locks diff --no-ext-diff --quiet 2>/dev/null
        case $? in 0) ;; 124) state="…" ;; *) state="*" ;; esac
        git --no-optional-locks diff-index --cached --quiet HEAD -- 2>/dev/null || state+="+"
    fi
    case $PWD/ in
    "$HOME"/Code/*/*)
        where=${top:-$PWD}
        where=${where#"$HOME"/Code/}
        line+="${magenta} ${where}${reset} "
        ;;
    esac
    line+="${green}${bold}\u${reset}${dim}@spoon${reset} ${blue}${bold} \w${reset}"
    if [ -n "${branch:-}" ]; then line+=" ${yellow} ${branch}${state}${reset}"; fi
    PS1="${line}\n\$ "
}
case ";${PROMPT_COMMAND:-};" in
*";__spoon_prompt;"*) ;;
*) PROMPT_COMMAND="__spoon_prompt${PROMPT_COMMAND:+;$PROMPT_COMMAND}" ;;
esac
