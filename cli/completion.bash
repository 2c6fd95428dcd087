# bash completion for nlbridge (installed as
# /usr/share/bash-completion/completions/nlbridge). Completes the client
# commands and their options, and the daemon's options from its --help, so
# the daemon's list is never copied here.

_nlbridge() {
	local cur prev words cword
	_init_completion || return

	local common='--url --token-file --json --help'
	local cmd=${words[1]}
	case $cmd in
	send)
		case $prev in
		--token-file) _filedir; return ;;
		--url) COMPREPLY=($(compgen -W 'http://127.0.0.1:8080 unix:' -- "$cur")); return ;;
		-g | --groups | -l | --list | -i | --pid | --relay | --type) return ;;
		esac
		COMPREPLY=($(compgen -W "-g --groups -l --list -i --pid --relay --hex --type --ack $common" -- "$cur"))
		;;
	watch)
		case $prev in
		--token-file) _filedir; return ;;
		--url) COMPREPLY=($(compgen -W 'http://127.0.0.1:8080 unix:' -- "$cur")); return ;;
		-l | --list | --since | -n | --count) return ;;
		esac
		[[ $cur == -* ]] && COMPREPLY=($(compgen -W "-l --list --hex --since -n --count $common" -- "$cur"))
		;;
	status)
		case $prev in
		--token-file) _filedir; return ;;
		--url) COMPREPLY=($(compgen -W 'http://127.0.0.1:8080 unix:' -- "$cur")); return ;;
		esac
		COMPREPLY=($(compgen -W "$common" -- "$cur"))
		;;
	*)
		if ((cword == 1)) && [[ $cur != -* ]]; then
			COMPREPLY=($(compgen -W 'send watch status' -- "$cur"))
			return
		fi
		case $prev in
		--config | --token-file | --token-out | --unix-socket) _filedir; return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$(nlbridge --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u)" -- "$cur"))
		fi
		;;
	esac
} && complete -F _nlbridge nlbridge
