# Cloning the dotfiles repository, read by repository.sh (which calls
# clone_repository <url> <ref> <into>) with ACCESS and TOKEN_USERNAME in the
# environment.
#
# A private repository's credential (ACCESS=token: the token; deploy_key:
# the private key) is the script's input. It never becomes an argument, an
# environment variable or a file: the token reaches git's credential helper
# through an inherited pipe, the key goes to an ssh-agent of this clone's own
# on its input. Neither is in the process list, the home, the log or the
# repository's config, and neither outlives the clone.
#
# Host keys are trusted on first use and kept in ~/.spoon/known_hosts: a
# changed one stops the clone.

KNOWN_HOSTS="$HOME/.spoon/known_hosts"
ssh_command="ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
ssh_command="$ssh_command -o UserKnownHostsFile=$KNOWN_HOSTS -o ConnectTimeout=20"
# Errors only: Spoon says itself which host key it trusted.
ssh_command="$ssh_command -o LogLevel=ERROR"

credential=""
if [ -n "${ACCESS:-}" ]; then credential=$(cat); fi
exec </dev/null

# host[:port] of a repository URL, for sentences.
url_host() {
    case $1 in
    *://*) h=${1#*://} && h=${h%%/*} ;;
    *) h=${1%%:*} ;;
    esac
    echo "${h##*@}"
}

clone_repository() {
    url=$1 clone_ref=$2 into=$3
    errors=$(mktemp) agent_key="" known_before=0
    [ -f "$KNOWN_HOSTS" ] && known_before=$(wc -l <"$KNOWN_HOSTS")
    set -- git -c credential.interactive=false
    if [ "${ACCESS:-}" = token ]; then
        # Only this helper (a user's own, such as "store", must not see the
        # token), and only for the repository's own host, not one it redirects to.
        # shellcheck disable=SC2016 # expanded by the helper's shell, not this one
        helper='!f() {
            test "$1" = get || return 0
            asked=""
            while read -r line; do case $line in host=*) asked=${line#host=} ;; esac; done
            test "$asked" = "$TOKEN_HOST" || return 0
            echo "username=${TOKEN_USERNAME:-git}"; printf password=; cat <&3
        }; f'
        TOKEN_HOST=$(url_host "$url") && export TOKEN_HOST
        set -- "$@" -c credential.helper= -c "credential.helper=$helper"
        exec 3<<EOF
$credential
EOF
    elif [ "${ACCESS:-}" = deploy_key ]; then
        eval "$(ssh-agent -s)" >/dev/null
        if ! printf '%s\n' "$credential" | ssh-add -q -t 600 - 2>>"$errors"; then
            ssh-agent -k >/dev/null 2>&1
            echo "spoon: error: the deploy key could not be loaded: generate or paste it again."
            return 2
        fi
        agent_key=$(mktemp)
        ssh-add -L >"$agent_key"
        ssh_command="$ssh_command -o IdentitiesOnly=yes -o IdentityFile=$agent_key"
    fi
    set -- "$@" clone --quiet --depth 1
    if [ -n "$clone_ref" ]; then set -- "$@" --branch "$clone_ref"; fi
    set -- "$@" -- "$url" "$into"
    mkdir -p ~/.spoon
    if [ -n "${ACCESS:-}" ]; then
        # The user's git configuration stays out of it (a credential helper, an insteadOf).
        GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 \
            GIT_SSH_COMMAND=$ssh_command "$@" 2>"$errors"
    else
        GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND=$ssh_command "$@" 2>"$errors"
    fi
    code=$?
    exec 3<&-
    credential=""
    if [ -n "$agent_key" ]; then ssh-agent -k >/dev/null 2>&1; rm -f "$agent_key"; fi
    cat "$errors"
    if [ "$code" -ne 0 ]; then explain_clone_failure "$url" "$clone_ref" "$errors"; fi
    rm -f "$errors"
    if [ -f "$KNOWN_HOSTS" ] && [ "$(wc -l <"$KNOWN_HOSTS")" -gt "$known_before" ]; then
        ssh-keygen -l -f "$KNOWN_HOSTS" | tail -n +$((known_before + 1)) | while read -r _ print _ kind; do
            echo "spoon: trusting $(url_host "$url")'s host key $kind $print from now on" \
                "(kept in ~/.spoon/known_hosts)"
        done
    fi
    return "$code"
}

# A sentence for what git said ($3, a file) when cloning $1 at $2 failed.
explain_clone_failure() {
    host=$(url_host "$1") said=$(cat "$3")
    asked_by=$(sed -n "s/.*could not read Username for '\([^']*\)'.*/\1/p" "$3" | head -n 1)
    if [ "${ACCESS:-}" = token ] && [ -n "$asked_by" ] && [ "$(url_host "$asked_by")" != "$host" ]; then
        echo "spoon: error: $host sent the clone on to $asked_by, and Spoon gives the token to" \
            "$host only: give the repository's URL there instead."
        return
    fi
    case $said in
    *"REMOTE HOST IDENTIFICATION HAS CHANGED"*)
        echo "spoon: error: $host's host key is not the one Spoon trusted before" \
            "(~/.spoon/known_hosts). If its owner really changed it, delete its line there and" \
            "apply again; otherwise something is posing as $host." ;;
    *"Permission denied (publickey"*)
        if [ "${ACCESS:-}" = deploy_key ]; then
            echo "spoon: error: $host refused the deploy key. Add its public half, shown on the" \
                "Dotfiles page, to the repository's deploy keys (read access is enough)."
        else
            echo "spoon: error: $host wants a key: for a private repository, give Spoon a" \
                "deploy key on the Dotfiles page."
        fi ;;
    *"Authentication failed"* | *"Invalid username or password"* | *"Access denied"* | \
        *"returned error: 401"* | *"returned error: 403"* | *"could not read Username"* | \
        *"could not read Password"* | *"terminal prompts disabled"*)
        if [ "${ACCESS:-}" = token ]; then
            echo "spoon: error: $host refused the token. Check that it is all there, has not" \
                "expired, and may read the repository."
        else
            echo "spoon: error: $host asks for a sign-in: for a private repository, give Spoon a" \
                "token on the Dotfiles page (or use its ssh URL and a deploy key)."
        fi ;;
    *"Remote branch"*"not found"*)
        echo "spoon: error: the repository has no branch or tag \"$2\"." ;;
    *"not found"* | *"does not appear to be a git repository"* | *"returned error: 404"* | \
        *"does not exist"*)
        echo "spoon: error: $host has no repository at $1, or it is private and Spoon's" \
            "access cannot see it." ;;
    *"Could not resolve host"*)
        echo "spoon: error: $host could not be found: check the URL." ;;
    *"Connection refused"* | *"timed out"* | *"Network is unreachable"* | *"Failed to connect"*)
        echo "spoon: error: $host could not be reached: check the URL, or try again later." ;;
    *)
        echo "spoon: error: the clone failed (git's words are above)." ;;
    esac
}
