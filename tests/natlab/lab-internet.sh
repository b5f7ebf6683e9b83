# shellcheck shell=bash
# The lab's small internet (--internet), sourced by lab.sh: a dozen STUN servers of every
# kind in the inet namespace, reached by name through a hosts file in the client
# namespaces, and the server lists a client would ship.
#
# One row per server and family (NAME is NAME.stun.lab.test; KIND is what it really is,
# CLAIM what its list entry says, as a public list might):
#   NAME     PORT FAM KIND         ADDRESS                  EXTRA                   CLAIM
INTERNET_SERVERS="
plain1     3478 4 plain        203.0.113.11:3478        -                       plain
plain1     3479 4 plain        203.0.113.11:3479        -                       plain
plain1     3478 6 plain        [2001:db8:113::11]:3478  -                       plain
plain2     3478 4 plain        203.0.113.12:3478        -                       plain
plain3     3478 4 plain        203.0.113.13:3478        -                       plain
plain6     3478 6 plain        [2001:db8:113::12]:3478  -                       plain
rfc5780    3478 4 5780         203.0.113.21:3478        203.0.113.22:3479       5780
rfc5780    3478 6 5780         [2001:db8:113::21]:3478  [2001:db8:113::22]:3479 5780
rfc3489    3478 4 3489         203.0.113.31:3478        203.0.113.32:3479       3489
silent     3478 4 silent       203.0.113.41:3478        -                       5780
closed     3478 4 closed       203.0.113.42:3478        -                       3489
liar       3478 4 liar         203.0.113.51:3478        203.0.113.52:3479       5780
wrongsrc   3478 4 wrong-source 203.0.113.61:3478        203.0.113.62:3478       plain
slow       3478 4 slow         203.0.113.71:3478        400                     plain
"
# EXTRA: the alternate address (5780, 3489, liar: OTHER-ADDRESS or CHANGED-ADDRESS), the
# address replies come from (wrong-source), the delay in ms (slow).
#   plain         `p2pd-repl stun-server ADDRESS`: XOR-MAPPED-ADDRESS only, CHANGE-REQUEST
#                 ignored (like Google's); plain1 answers on two ports (two processes)
#   5780          coturn on both addresses of each family (OTHER-ADDRESS, RESPONSE-ORIGIN,
#                 CHANGE-REQUEST honoured)
#   3489          stund (CHANGED-ADDRESS, SOURCE-ADDRESS, CHANGE-REQUEST honoured)
#   silent        nobody owns the address: the router holds a permanent neighbour entry
#                 for it with a MAC no interface has, so packets vanish (no ARP wait, no
#                 ICMP)
#   closed        inet owns the address and nothing listens: ICMP port unreachable
#   liar, wrong-source, slow  stunlab.py (see its header)
# The wrong-source server's replies come from an address the client never sent to, so
# behind any filter but EIF they are dropped and it looks silent; `verify-internet`
# therefore runs on an open variant.
SILENT_MAC=02:00:00:00:00:41
INTERNET_DOMAIN=stun.lab.test

internet_rows() { awk 'NF == 7 && $1 !~ /^#/' <<<"$INTERNET_SERVERS"; }
addr_ip() { local a=${1%:*}; a=${a#[}; echo "${a%]}"; }
addr_port() { echo "${1##*:}"; }

internet_need_tools() {
    need_tool python3 python3 "--internet"
    need_tool turnserver coturn "--internet"
    need_tool stund stun-server "--internet"
    need_tool ss iproute2 "--internet"
    repl_bin >/dev/null
}

repl_bin() {
    local c
    for c in "${P2PD_REPL:-}" "$HERE/../../target/debug/p2pd-repl" "$HERE/../../target/release/p2pd-repl" \
        "$(command -v p2pd-repl 2>/dev/null)"; do
        [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }
    done
    die "--internet needs the p2pd-repl binary (cargo build, or set P2PD_REPL)"
}

inet_addr() {  # $1 ip: add it to isp0 once
    if [[ $1 == *:* ]]; then ns inet ip addr replace "$1/64" dev isp0 nodad
    else ns inet ip addr replace "$1/24" dev isp0; fi
}

spawn_inet() {  # $1 log name, then the command: started in inet (lab_down kills it)
    local log=$1; shift
    ns inet "$@" >"$STATE/internet-$log.log" 2>&1 &
}

internet_up() {
    local repl name port fam kind addr extra ip listen=() coturn_l=()
    repl=$(repl_bin)
    while read -r name port fam kind addr extra _; do
        ip=$(addr_ip "$addr")
        case $kind in
            silent)
                ns router ip neigh replace "$ip" lladdr $SILENT_MAC dev wan0 nud permanent
                continue ;;
            closed) inet_addr "$ip"; continue ;;
        esac
        inet_addr "$ip"
        listen+=("$addr")
        case $kind in
            plain) spawn_inet "$name-$fam-$port" "$repl" stun-server "$addr" ;;
            5780) inet_addr "$(addr_ip "$extra")"; listen+=("$extra")
                  coturn_l+=(-L "$ip" -L "$(addr_ip "$extra")") ;;
            3489) inet_addr "$(addr_ip "$extra")"; listen+=("$extra")
                  spawn_inet "$name" stund -h "$ip" -a "$(addr_ip "$extra")" \
                      -p "$port" -o "$(addr_port "$extra")" ;;
            liar) inet_addr "$(addr_ip "$extra")"; listen+=("$extra")
                  spawn_inet "$name" python3 "$HERE/stunlab.py" liar "$ip" "$(addr_ip "$extra")" \
                      "$port" "$(addr_port "$extra")" ;;
            wrong-source) inet_addr "$(addr_ip "$extra")"
                  spawn_inet "$name" python3 "$HERE/stunlab.py" wrong-source "$addr" "$extra" ;;
            slow) spawn_inet "$name" python3 "$HERE/stunlab.py" slow "$addr" "$extra" ;;
            *) die "internal: unknown server kind '$kind'" ;;
        esac
    done < <(internet_rows)
    # One coturn for both families: it pairs each listening address with the other one of
    # its family for OTHER-ADDRESS.
    spawn_inet coturn turnserver -n --stun-only --no-cli --no-tls --no-dtls --no-tcp \
        "${coturn_l[@]}" -p 3478 --alt-listening-port 3479 --db "$STATE/coturn.db" \
        --log-file "$STATE/internet-coturn-file.log" --simple-log \
        --pidfile "$STATE/coturn.pid" --no-software-attribute
    internet_files
    wait_listening "${listen[@]}"
}

# Until every address in "$@" has a UDP socket bound in inet (5 s at most).
wait_listening() {
    local i missing
    for ((i = 0; i < 250; i++)); do
        missing=$(ns inet ss -Hnlu | awk -v want="$*" '{bound[$4] = 1}
            END {n = split(want, w, " "); for (i = 1; i <= n; i++) if (!(w[i] in bound)) printf " %s", w[i]}')
        [ -z "$missing" ] && return 0
        sleep 0.02
    done
    die "--internet servers not listening on:$missing (logs: $STATE/internet-*.log)"
}

# The hosts file and resolv.conf of the client namespaces (`ip netns exec` mounts
# /etc/netns/NS/* over /etc/*), the server lists and the truth in the env file.
internet_files() {
    local role dir today n=0 name port fam kind addr extra
    today=$(date +%F)
    for role in client client2; do
        dir=/etc/netns/${PFX}${role}
        mkdir -p "$dir"
        {
            echo "# NAT lab --internet: the STUN servers' names (lab-internet.sh)"
            echo "127.0.0.1 localhost"
            echo "::1 localhost"
            internet_rows | awk -v d="$INTERNET_DOMAIN" '{a=$5; sub(/:[0-9]+$/, "", a); gsub(/[][]/, "", a);
                k=a " " $1; if (!(k in seen)) {seen[k]=1; print a, $1 "." d}}'
        } >"$dir/hosts"
        # No name server: a name outside the hosts file fails at once instead of timing out.
        printf '# NAT lab --internet: no name server, names come from /etc/hosts only\n' >"$dir/resolv.conf"
    done
    list_header >"$STATE/stun_servers.txt"
    list_header >"$STATE/stun_servers_plain.txt"
    # One line per name and port, its families joined ("46").
    internet_rows | awk -v d="$INTERNET_DOMAIN" -v t="$today" -v all="$STATE/stun_servers.txt" \
        -v plain="$STATE/stun_servers_plain.txt" '
        { k=$1 " " $2; if (!(k in fam)) {order[++n]=k; claim[k]=$7; kind[k]=$4}; fam[k]=fam[k] $3 }
        END { for (i=1; i<=n; i++) { k=order[i]; split(k, p, " ");
              line=sprintf("%s.%s %s %s %s lab %s", p[1], d, p[2], claim[k], fam[k], t);
              print line >> all; if (kind[k]=="plain") print line >> plain } }'
    {
        echo "STUN_LIST=$STATE/stun_servers.txt"
        echo "STUN_LIST_PLAIN=$STATE/stun_servers_plain.txt"
        echo "# STUN_SERVER_N=\"HOST PORT FAMILY KIND ADDRESS EXTRA\" (lab-internet.sh)"
        while read -r name port fam kind addr extra _; do
            n=$((n + 1))
            echo "STUN_SERVER_$n=\"$name.$INTERNET_DOMAIN $port $fam $kind $addr $extra\""
        done < <(internet_rows)
        echo "STUN_SERVER_COUNT=$n"
    } >>"$STATE/env"
}

list_header() {
    cat <<'EOF'
# One STUN server per line, whitespace-separated columns:
# HOST PORT CAPS FAMILIES SOURCE CHECKED
#   CAPS: plain | 5780 | 3489   (what the source claims; the client checks at run time)
#   FAMILIES: 4 | 6 | 46
#   SOURCE: one token naming where the entry came from
#   CHECKED: YYYY-MM-DD, when the source last saw it answer
EOF
}

internet_files_down() {
    local role
    for role in client client2; do rm -rf "/etc/netns/${PFX}${role}"; done
}

# The primary IP of a server row: $1 name, $2 family.
server_ip() { addr_ip "$(internet_rows | awk -v n="$1" -v f="$2" '$1 == n && $3 == f {print $5; exit}')"; }

# Runs "$@" in the client namespace; passes when its output holds $1 (printed either way).
third_party() {  # $1 expected text, $2 title, then the command
    local want=$1 title=$2 out; shift 2
    out=$(ns client timeout 20 "$@" 2>&1 || true)
    if grep -qF "$want" <<<"$out"; then echo "PASS $title: $want"
    else echo "FAIL $title: no '$want' in:"; sed 's/^/    /' <<<"$out"; return 1; fi
}

# Two labs. On an open dual-stack client every reply arrives, so stunlab.py tells each
# server's real kind, which must be its row's; p2pd-repl must resolve every name there.
# Behind port-restricted (IPv4) and an APDF firewall (IPv6), third-party clients must see
# the filter through the honest change servers and be fooled by the liar.
verify_internet() {
    local failed=0 name port fam kind addr local_ip out got ip4 ip6
    lab_up none --ipv6 none --internet >/dev/null
    ip4=$(lab_env CLIENT_IP); ip6=$(lab_env CLIENT_IP6)
    while read -r name port fam kind addr _; do
        local_ip=$ip4; [ "$fam" = 6 ] && local_ip=$ip6
        out=$(ns client python3 "$HERE/stunlab.py" kind "$local_ip" "$(addr_ip "$addr")" "$port")
        got=$(sed -n 's/^kind=//p' <<<"$out")
        if [ "$got" = "$kind" ]; then printf 'PASS'; else printf 'FAIL'; failed=1; fi
        echo " $name.$INTERNET_DOMAIN $port IPv$fam is $kind; stunlab.py: $(grep -v '^kind=' <<<"$out" | tr '\n' ' ')"
    done < <(internet_rows)
    local script
    script=$(internet_rows | awk -v d="$INTERNET_DOMAIN" '{f = ($3 == 6) ? "IP6" : "IP4"; a = $5;
        sub(/:[0-9]+$/, "", a); gsub(/[][]/, "", a);
        printf "let ip = resolve(\"%s.%s\", %s, %s).ip; print(`%s %s.%s ${ip}`);\n",
            $1, d, $2, f, a, $1, d}')
    out=$(ns client "$(repl_bin)" -e "$script" 2>&1) || failed=1
    # Each line is "WANT NAME GOT": the address the row gives, and the one resolved.
    if awk 'NF != 3 || $1 != $3 {bad=1; print "FAIL resolve: " $0} END {exit bad}' <<<"$out"; then
        echo "PASS p2pd-repl resolves all $(wc -l <<<"$out") names in ${NS_CLIENT}"
    else failed=1; fi
    lab_down

    lab_up port-restricted --ipv6 firewall --internet >/dev/null
    ip4=$(lab_env CLIENT_IP); ip6=$(lab_env CLIENT_IP6)
    third_party "Address and Port Dependent Filtering" "turnutils_natdiscovery, coturn, IPv4" \
        turnutils_natdiscovery -m -f -L "$ip4" "$(server_ip rfc5780 4)" || failed=1
    third_party "Address and Port Dependent Filtering" "turnutils_natdiscovery, coturn, IPv6" \
        turnutils_natdiscovery -m -f -L "$ip6" "$(server_ip rfc5780 6)" || failed=1
    third_party "Endpoint Independent Filtering" "turnutils_natdiscovery fooled by the liar" \
        turnutils_natdiscovery -f -L "$ip4" "$(server_ip liar 4)" || failed=1
    third_party "Port Dependent Filter" "stun (stun-client), stund" \
        stun "rfc3489.$INTERNET_DOMAIN" -i "$ip4" || failed=1
    lab_down
    return $failed
}
