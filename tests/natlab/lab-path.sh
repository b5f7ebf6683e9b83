# shellcheck shell=bash
# The slow and lossy WAN link of the NAT lab (--rtt, --loss), sourced by lab.sh: a link
# namespace between router and inet where delayline.py copies frames, and the commands
# that change and measure it (path, measure, verify-path).

ECHO_IP=203.0.113.250
ECHO_IP6=$V6_WAN::250
ECHO_PORT=7

# Offloads left on would hand the copier unfinished checksums and 64 KiB TCP segments.
offloads_off() {  # $1 role, $2 device
    ns "$1" ethtool -K "$2" tx off sg off tso off gso off gro off >/dev/null 2>&1 \
        || die "ethtool could not turn offloads off on $2 in ${PFX}$1"
}

# wan0 (router) and isp0 (inet), each paired with a veth in the link namespace.
path_link_up() {
    ns_base "$NS_LINK" off
    ip link add wan0 netns "$NS_ROUTER" type veth peer name rt0 netns "$NS_LINK"
    ip link add isp0 netns "$NS_INET" type veth peer name in0 netns "$NS_LINK"
    offloads_off router wan0
    offloads_off inet isp0
    local dev
    for dev in rt0 in0; do
        offloads_off link "$dev"
        # Frames for the far side's MAC must reach the copier, not be filtered.
        ns link ip link set "$dev" promisc on up
    done
}

wait_for_line() {  # $1 file, $2 text, $3 what: up to 5 s
    local i
    for ((i = 0; i < 250; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.02
    done
    die "$3 did not start: $(cat "$1" 2>/dev/null)"
}

path_start() {  # $1 rtt ms, $2 loss %
    echo "rtt=$1 loss=$2" >"$STATE/path.control"
    ns link python3 "$HERE/delayline.py" rt0 in0 --control "$STATE/path.control" \
        --stats "$STATE/path.stats" --pidfile "$STATE/delayline.pid" >"$STATE/delayline.log" 2>&1 &
    wait_for_line "$STATE/delayline.log" "ready" "the delay line"
}

delayline_pid() {
    [ -f "$STATE/delayline.pid" ] || die "this lab has no delay line (bring it up with --rtt or --loss)"
    cat "$STATE/delayline.pid"
}

# Asks the copier for its counters; returns once the file shows them (and the settings,
# so a change of settings is in force when `path` returns).
path_stats() {  # $1: the rtt=/loss= pair the stats must show, or empty
    local pid i
    pid=$(delayline_pid)
    for ((i = 0; i < 100; i++)); do
        rm -f "$STATE/path.stats"
        kill -USR1 "$pid" 2>/dev/null || die "the delay line (pid $pid) is not running"
        sleep 0.02
        [ -s "$STATE/path.stats" ] || continue
        [ -z "$1" ] && return 0
        [ "$(awk -F= '$1=="rtt_ms"{r=$2} $1=="loss_pct"{l=$2} END{print "rtt=" r " loss=" l}' \
            "$STATE/path.stats")" = "$1" ] && return 0
    done
    die "the delay line did not report ${1:-its counters}"
}

path_change() {
    local rtt loss pid
    rtt=$(lab_env RTT_MS); loss=$(lab_env LOSS_PCT)
    while [ $# -gt 0 ]; do
        case $1 in
            --rtt) [ $# -ge 2 ] || die "--rtt needs milliseconds"; number_in --rtt "$2" 10000; rtt=$2; shift ;;
            --loss) [ $# -ge 2 ] || die "--loss needs a percentage"; number_in --loss "$2" 100; loss=$2; shift ;;
            *) die "unknown option '$1' (path takes --rtt MS and --loss PCT)" ;;
        esac
        shift
    done
    pid=$(delayline_pid)
    echo "rtt=$rtt loss=$loss" >"$STATE/path.control"
    kill -HUP "$pid" 2>/dev/null || die "the delay line (pid $pid) is not running"
    path_stats "rtt=$(awk -v v="$rtt" 'BEGIN{printf "%g", v}') loss=$(awk -v v="$loss" 'BEGIN{printf "%g", v}')"
    sed -i -e "s/^RTT_MS=.*/RTT_MS=$rtt/" -e "s/^LOSS_PCT=.*/LOSS_PCT=$loss/" "$STATE/env"
    echo "path: rtt $rtt ms, loss $loss %"
}

path_status() {
    [ -f "$STATE/delayline.pid" ] || return 0
    echo "== delay line"
    path_stats ""
    cat "$STATE/path.stats"
}

# Starts the echo server for `measure` on its own inet address, once per family.
echo_server() {  # $1 4|6: prints the server's address
    local ip=$ECHO_IP len=24 extra=()
    if [ "$1" = 6 ]; then ip=$ECHO_IP6; len=64; extra=(nodad); fi
    if [ ! -f "$STATE/echo$1.pid" ]; then
        ns inet ip addr replace "$ip/$len" dev isp0 "${extra[@]}"
        ns inet python3 "$HERE/udpprobe.py" echo "$ip" $ECHO_PORT >"$STATE/echo$1.log" 2>&1 &
        echo $! >"$STATE/echo$1.pid"
        wait_for_line "$STATE/echo$1.log" "ready" "the echo server"
    fi
    echo "$ip"
}

lab_measure() {
    need_tool python3 python3 measure
    local family="" args=() local_ip server
    while [ $# -gt 0 ]; do
        case $1 in
            --family) [ $# -ge 2 ] || die "--family needs 4 or 6"; family=$2; shift ;;
            --count|--interval|--expect-rtt|--expect-loss)
                [ $# -ge 2 ] || die "$1 needs a number"; args+=("$1" "$2"); shift ;;
            *) die "unknown option '$1' (measure takes --family, --count, --interval)" ;;
        esac
        shift
    done
    [ -n "$family" ] || family=$(lab_env FAMILIES | cut -c1)
    case $family in
        4) local_ip=$(lab_env CLIENT_IP) ;;
        6) local_ip=$(lab_env CLIENT_IP6) ;;
        *) die "--family is 4 or 6, not '$family'" ;;
    esac
    [ -n "$local_ip" ] || die "this lab's client has no IPv$family address (variant $(lab_env VARIANT))"
    server=$(echo_server "$family")
    ns client python3 "$HERE/udpprobe.py" rtt "$local_ip" "$server" $ECHO_PORT "${args[@]}"
}

# The RTT/loss matrix on one lab (dual stack unless the variant is IPv6 only); each cell
# must match its setting (udpprobe.py rtt --expect-*), and the copier must lose nothing.
verify_path() {
    local variant=${1:-port-restricted} rtt loss family failed=0 out extra=() families
    case $variant in v6-*) ;; *) extra=(--ipv6 firewall) ;; esac
    lab_up "$variant" "${extra[@]}" --rtt 1 --loss 0 >/dev/null
    families=$(lab_env FAMILIES)
    local started=$SECONDS
    for rtt in 1 50 150 300; do
        for loss in 0 10 25; do
            path_change --rtt "$rtt" --loss "$loss" >/dev/null
            for family in 4 6; do
                [[ $families == *$family* ]] || continue
                if out=$(lab_measure --family "$family" --count 400 --interval 2 \
                    --expect-rtt "$rtt" --expect-loss "$loss"); then
                    printf 'PASS '
                else
                    printf 'FAIL '; failed=1
                fi
                awk -F= -v f="$family" -v r="$rtt" -v l="$loss" '
                    {v[$1]=$2}
                    END {printf "IPv%s rtt %s loss %s: median %s ms (min %s, p90 %s, max %s), loss out %s %%, back %s %%, reordered %s%s\n",
                         f, r, l, v["rtt_median_ms"], v["rtt_min_ms"], v["rtt_p90_ms"], v["rtt_max_ms"],
                         v["loss_out_pct"], v["loss_back_pct"], v["reordered"],
                         (v["verdict"] == "ok" ? "" : " -- " v["verdict"])}' <<<"$out"
            done
        done
    done
    path_stats ""
    echo "delay line counters after $((SECONDS - started)) s:"
    sed 's/^/    /' "$STATE/path.stats"
    if ! awk -F'[= ]' '$1 ~ /^(send_errors|overflow|kernel_drops)$/ && ($2 + $3) > 0 {bad=1}
                       END {exit bad}' "$STATE/path.stats"; then
        echo "FAIL the delay line itself lost frames"; failed=1
    fi
    lab_down
    return $failed
}
