#!/usr/bin/env bash
# The lower bound a first deploy is measured against: the same EMQX containers
# (image, node names, published ports, open-file limit, data and log
# directories, static seeds), started by hand with `docker run` on each host at
# once over SSH, then waiting until the first host's node sees every node
# running. No tuning, no firewall, no configuration files, no authentication.
# Prints the seconds it took. Removes what it made with --remove.
#   tests/lab/bare_deploy.sh IMAGE COOKIE ADDRESS...
#   tests/lab/bare_deploy.sh --remove IMAGE ADDRESS...
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ssh_to() {
  local address=$1; shift
  ssh -i "$root/.lab/ssh/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR "lab@$address" "$@"
}

if [ "$1" = --remove ]; then
  image=$2; shift 2
  for address in "$@"; do
    ssh_to "$address" "sudo docker rm -f emqx >/dev/null 2>&1; sudo rm -rf /opt/bare-emqx; sudo docker rmi -f $image >/dev/null 2>&1; true" &
  done
  wait
  exit 0
fi

image=$1 cookie=$2; shift 2
seeds=$(printf 'emqx@%s,' "$@"); seeds=${seeds%,}
start=$(date +%s.%N)
for address in "$@"; do
  ssh_to "$address" "sudo mkdir -p /opt/bare-emqx/data /opt/bare-emqx/log && sudo chown -R 1000:1000 /opt/bare-emqx \
    && sudo docker run -d --name emqx --hostname emqx --restart unless-stopped \
    -e EMQX_NAME=emqx -e EMQX_HOST=$address -e EMQX_NODE_COOKIE=$cookie \
    -e EMQX_CLUSTER__DISCOVERY=static -e EMQX_CLUSTER__STATIC__SEEDS=$seeds \
    -v /opt/bare-emqx/data:/opt/emqx/data -v /opt/bare-emqx/log:/opt/emqx/log --ulimit nofile=16384:16384 \
    -p 1883:1883 -p 8883:8883 -p 8083:8083 -p 8084:8084 -p 8081:8081 -p 18083:18083 -p 4370:4370 -p 5369:5369 \
    $image >/dev/null" &
done
wait
want=$#
until [ "$(ssh_to "$1" "sudo docker exec emqx emqx_ctl cluster status 2>/dev/null" \
           | tr -d ' \n' | grep -o 'running_nodes=>\[[^]]*\]' | grep -o "emqx@" | wc -l)" -ge "$want" ]; do
  sleep 0.5
done
awk -v start="$start" -v end="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", end - start }'
