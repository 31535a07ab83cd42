# ~/.bashrc: read by every interactive shell in your box (each terminal).
# Spoon's defaults come first: history, completion, aliases (exa as ls) and
# the prompt. Anything you set below them wins; delete the line to start bare.
[ -r /usr/local/share/spoon/interactive.sh ] && . /usr/local/share/spoon/interactive.sh
