#!/usr/bin/env bash
# Bring up the real engines repropack's tests run on, idempotently (root, Debian 12 or 13):
#   docker     Debian's docker.io; dockerd on /var/run/docker.sock (implies base)
#   base       image local/debian:bookworm-python: debootstrap bookworm minbase + python3, `docker import`ed
#              (no image can be pulled here); the rootfs tarball is cached under /var/cache/repropack-engines
#   apptainer  Debian unstable's .deb, pinned by version + sha256 (implies base, to prove it builds a SIF);
#              on glibc < 2.38 its binaries are linked to scripts/engines.d/glibc-shim.c
#   slurm      munge, slurmctld, slurmd (one node: this host), slurmdbd on MariaDB (sacct works),
#              cgroups enforcing --mem
#   registry   Debian's docker-registry on 127.0.0.1:5000
#   browser    Debian's chromium, headless (the report's test opens the HTML report in it)
#   prometheus Debian's prometheus, promtool and pushgateway, installed only: the Debian service is stopped and
#              disabled; tests start their own server on 127.0.0.1 (scripts/engines.d/prometheus.sh)
# Usage: scripts/engines.sh [docker|base|apptainer|slurm|registry|browser|prometheus]...   (none: all)
# It ends by running a command in each engine brought up and exits non-zero if any does not work.
# Logs: /var/log/repropack-engines-*.log (run: this script's own output). docs/engines.md explains it.
set -euo pipefail

APPTAINER_PIN_VERSION="1.4.5-2"
APPTAINER_PIN_SHA256="26cf96e08fccb0e50ea0f285a5a19f940ee873d167a0680584fe6eba7d197d65"
DEBIAN_MIRROR="http://deb.debian.org/debian"
BASE_IMAGE="local/debian:bookworm-python"
BASE_SUITE="bookworm"
BASE_INCLUDE="python3,ca-certificates"
REGISTRY_ADDR="127.0.0.1:5000"
CACHE=/var/cache/repropack-engines
STATE=/var/lib/repropack-engines
LOG=/var/log/repropack-engines
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "engines: FAILED: $*" >&2; exit 1; }
log() { echo "engines: $*" >&2; }
[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts daemons)"
[ -r /etc/debian_version ] || die "not Debian (no /etc/debian_version)"
debian_major=$(cut -d. -f1 /etc/debian_version)
case "$debian_major" in
  12|13) ;;
  *) echo "engines: WARNING: written for Debian 12 and 13, this is '$(cat /etc/debian_version)'; trying anyway" >&2
     [[ "$debian_major" =~ ^[0-9]+$ ]] || debian_major=99 ;;  # testing/sid: "forky/sid"
esac

want=()
for arg in "$@"; do
  case "$arg" in
    docker|base|apptainer|slurm|registry|browser|prometheus) want+=("$arg") ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown engine '$arg' (choose from: docker base apptainer slurm registry browser prometheus)" ;;
  esac
done
[ ${#want[@]} -gt 0 ] || want=(docker base apptainer slurm registry browser prometheus)
has() { local w; for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }
has apptainer && ! has base && want+=(base)
has docker && ! has base && want+=(base)
has base && ! has docker && want+=(docker)

mkdir -p "$CACHE" "$STATE" /var/log
exec > >(tee -a "$LOG-run.log") 2>&1
log "$(date -Is) bringing up: ${want[*]} (Debian $(cat /etc/debian_version))"

T0=$SECONDS; phase_start=$SECONDS; phase_name=""
phase() {
  [ -z "$phase_name" ] || log "phase $phase_name: $((SECONDS - phase_start)) s"
  phase_name="$1"; phase_start=$SECONDS
}
wait_for() {  # wait_for SECONDS CMD...: retry CMD once a second
  local limit=$1 i; shift
  for ((i = 0; i < limit; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  return 1
}
ge_version() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | sed -n 1p)" = "$2" ]; }  # $1 >= $2
put() {  # put FILE MODE < content; returns 0 when the file changed
  local tmp; tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
  install -m "$2" "$tmp" "$1"; rm -f "$tmp"; return 0
}
keyring() { local k; for k in /usr/share/keyrings/debian-archive-keyring.{gpg,pgp}; do [ -f "$k" ] && { echo "$k"; return; }; done; die "no Debian archive keyring"; }
start_daemon() {  # start_daemon LOGNAME CMD...: detached from this shell, so it outlives it
  local name=$1; shift; (setsid "$@" >>"$LOG-$name.log" 2>&1 </dev/null &); }
running() {  # running DAEMON: its pid file names a live (not zombie) process of that name
  local pid; pid=$(cat "/run/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && ! grep -qs '^State:.*zombie' "/proc/$pid/status"
}
glibc=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
need_shim=""; ge_version "$glibc" 2.38 || need_shim=1

# ---------------------------------------------------------------- packages
export DEBIAN_FRONTEND=noninteractive
apt_updated=""
apt_install() {  # apt_install PKG...: those not installed yet, in one transaction
  local p missing=()
  for p in "$@"; do dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "apt installing: ${missing[*]}"
  # unsafe-io: no fsync per unpacked file, a large share of a fresh install's time; a crash mid-install
  # would only mean running this script again.
  local opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-unsafe-io -q -y)
  if [ -z "$apt_updated" ]; then
    apt-get "${opts[@]}" update >>"$LOG-apt.log" 2>&1 || { tail -20 "$LOG-apt.log"; die "apt-get update"; }
    apt_updated=1
  fi
  apt-get "${opts[@]}" install --no-install-recommends "${missing[@]}" >>"$LOG-apt.log" 2>&1 \
    || { tail -30 "$LOG-apt.log"; die "apt-get install ${missing[*]} (see $LOG-apt.log)"; }
}
phase packages

# The base rootfs first, in the background: debootstrap (network and dpkg in a chroot) then overlaps
# with installing and starting everything else.
base_tar="$CACHE/$BASE_SUITE-minbase-${BASE_INCLUDE//,/-}.tar"
debootstrap_pid=""
if has base && [ ! -s "$base_tar" ] && ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  apt_install debootstrap
  log "debootstrap $BASE_SUITE (log $LOG-debootstrap.log), in the background"
  (
    root=$(mktemp -d /var/tmp/repropack-rootfs.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase --include="$BASE_INCLUDE" --keyring="$(keyring)" \
      "$BASE_SUITE" "$root" "$DEBIAN_MIRROR" >>"$LOG-debootstrap.log" 2>&1
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar --numeric-owner -C "$root" -cf "$base_tar.part" .
    mv "$base_tar.part" "$base_tar"
  ) &
  debootstrap_pid=$!
fi

pkgs=(curl ca-certificates openssh-client)  # ssh-keygen: archive signing (repropack pack --sign) and its tests
has docker && pkgs+=(docker.io)
# Debian 13 split the client out of docker.io (only a Recommends there); Debian 12 has no docker-cli.
has docker && [ "${debian_major:-0}" -ge 13 ] 2>/dev/null && pkgs+=(docker-cli)
has base && pkgs+=(debootstrap)
has apptainer && pkgs+=(squashfs-tools uidmap fuse2fs squashfuse libseccomp2 libsqlite3-0 containernetworking-plugins)
has apptainer && [ -n "$need_shim" ] && pkgs+=(patchelf gcc libc6-dev python3)
has slurm && pkgs+=(slurm-wlm slurmdbd munge mariadb-server)
has registry && pkgs+=(docker-registry)
has browser && pkgs+=(chromium fonts-dejavu-core)
has prometheus && pkgs+=(prometheus prometheus-pushgateway)
apt_install "${pkgs[@]}"

# ---------------------------------------------------------------- prometheus
if has prometheus; then
  phase prometheus
  # The package's own service would scrape and listen on all interfaces (9090): stop it, keep it off.
  if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus prometheus-node-exporter prometheus-pushgateway >/dev/null 2>&1 || true
  else
    for svc in prometheus prometheus-node-exporter prometheus-pushgateway; do
      [ -x "/etc/init.d/$svc" ] && { "/etc/init.d/$svc" stop >/dev/null 2>&1 || true; }
      update-rc.d "$svc" disable >/dev/null 2>&1 || true
    done
  fi
  log "prometheus $(prometheus --version 2>&1 | awk 'NR == 1 {print $3}'), promtool, prometheus-pushgateway"
fi

# ---------------------------------------------------------------- docker
if has docker; then
  phase docker
  if ! docker info >/dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then systemctl start docker; else start_daemon dockerd dockerd; fi
    wait_for 60 docker info || die "dockerd did not come up (see $LOG-dockerd.log)"
  fi
  log "docker $(docker version --format '{{.Server.Version}}')"
fi

# ---------------------------------------------------------------- registry
if has registry; then
  phase registry
  if ! curl -fsS --noproxy '*' "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
    mkdir -p "$STATE/registry" /etc/repropack-engines
    put /etc/repropack-engines/registry.yml 644 <<CONF || true
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
CONF
    start_daemon registry docker-registry serve /etc/repropack-engines/registry.yml
    wait_for 30 curl -fsS --noproxy '*' "http://$REGISTRY_ADDR/v2/" || die "registry did not come up (see $LOG-registry.log)"
  fi
  log "registry http://$REGISTRY_ADDR"
fi

# ---------------------------------------------------------------- slurm
if has slurm; then
  phase slurm
  if command -v mariadb-admin >/dev/null; then sqladmin=mariadb-admin sql=mariadb; else sqladmin=mysqladmin sql=mysql; fi
  if command -v mariadbd-safe >/dev/null; then sqlsafe=mariadbd-safe; else sqlsafe=mysqld_safe; fi
  mkdir -p /etc/munge /var/log/munge /run/munge /var/lib/munge /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/mysqld
  chown mysql:mysql /run/mysqld
  [ -s /etc/munge/munge.key ] || mungekey -c -k /etc/munge/munge.key >/dev/null 2>&1 \
    || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge
  chmod 400 /etc/munge/munge.key
  if ! munge -n >/dev/null 2>&1; then
    su -s /bin/sh munge -c munged
    wait_for 20 munge -n || die "munged did not come up"
  fi
  if ! $sqladmin ping >/dev/null 2>&1; then
    start_daemon mysqld "$sqlsafe"
    wait_for 60 $sqladmin ping || die "MariaDB did not come up (see $LOG-mysqld.log)"
  fi
  $sql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
           ALTER USER 'slurm'@'localhost' IDENTIFIED BY 'slurm'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  host=$(hostname -s); cpus=$(nproc); memmb=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 - 1024 ))
  changed=""
  put /etc/slurm/slurmdbd.conf 600 <<CONF && changed=1
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
CONF
  # cgroups enforce --mem: a job over it ends OUT_OF_MEMORY (with task/none it would just run on).
  # Without systemd, Slurm's cgroup v2 plugin must be told not to ask systemd for a scope.
  cgroup_extra=""; [ -f /sys/fs/cgroup/cgroup.controllers ] && [ ! -d /run/systemd/system ] && cgroup_extra="IgnoreSystemd=yes"
  put /etc/slurm/cgroup.conf 644 <<CONF && changed=1
CgroupPlugin=autodetect
ConstrainCores=yes
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
$cgroup_extra
CONF
  put /etc/slurm/slurm.conf 644 <<CONF && changed=1
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup,task/affinity
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
MinJobAge=300
# A job that states no --mem gets a share of the node, not all of it (with CR_Core_Memory and no
# default, each such job would take the whole node's memory and the jobs would run one at a time).
DefMemPerCPU=$(( memmb / cpus ))
NodeName=$host CPUs=$cpus RealMemory=$memmb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  if [ -n "$changed" ]; then  # new configuration: restart what runs with the old one
    for d in slurmd slurmctld slurmdbd; do
      pid=$(cat "/run/$d.pid" 2>/dev/null || true)
      if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
        log "restarting $d for the new configuration"; wait_for 20 sh -c "! kill -0 $pid"
      fi
    done
  fi
  running slurmdbd || slurmdbd
  wait_for 30 sacctmgr -n list cluster || die "slurmdbd did not come up (see /var/log/slurm/slurmdbd.log)"
  sacctmgr -n -P list cluster format=cluster | grep -qx local || sacctmgr -i add cluster local >/dev/null
  running slurmctld || slurmctld
  running slurmd || slurmd
  node_up() { sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)'; }
  wait_for 60 node_up || die "the SLURM node did not become idle: $(sinfo -h -o '%T %E' 2>&1)"
  log "$(sinfo -V) node $host cpus=$cpus mem=${memmb}M, accounting on"
fi

# ---------------------------------------------------------------- apptainer
apptainer_deb() {  # prints the path of a verified .deb: the pin, or loudly the current unstable one
  local deb="$CACHE/apptainer_${APPTAINER_PIN_VERSION}_amd64.deb"
  local url="$DEBIAN_MIRROR/pool/main/a/apptainer/apptainer_${APPTAINER_PIN_VERSION}_amd64.deb"
  if [ ! -s "$deb" ]; then curl -fsSL --retry 3 -o "$deb.part" "$url" && mv "$deb.part" "$deb" || rm -f "$deb.part"; fi
  if [ -s "$deb" ]; then
    echo "$APPTAINER_PIN_SHA256  $deb" | sha256sum -c --quiet >&2 || { rm -f "$deb"; die "apptainer .deb sha256 mismatch ($url)"; }
    echo "$deb"; return
  fi
  # The pin left the archive. apt verifies the current one against unstable's signed index; a private
  # apt state keeps unstable out of this machine's own sources.
  local apt="$CACHE/apt-sid"
  mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/get"
  printf 'Types: deb\nURIs: %s\nSuites: sid\nComponents: main\nSigned-By: %s\n' "$DEBIAN_MIRROR" "$(keyring)" >"$apt/parts/sid.sources"
  local opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/parts" -o "Dir::State::Lists=$apt/lists"
              -o "Dir::Cache=$apt/cache" -o APT::Architecture=amd64 -q
              -o Acquire::Check-Valid-Until=false)  # mirrors here may serve an expired, still signed, sid index
  apt-get "${opts[@]}" update >>"$LOG-apt.log" 2>&1 || die "cannot read Debian unstable's index"
  local version sha
  version=$(apt-cache "${opts[@]}" show apptainer | awk '/^Version:/{print $2; exit}')
  sha=$(apt-cache "${opts[@]}" show "apptainer=$version" | awk '/^SHA256:/{print $2; exit}')
  rm -f "$apt/get"/*.deb
  (cd "$apt/get" && apt-get "${opts[@]}" download "apptainer=$version" >>"$LOG-apt.log" 2>&1) || die "cannot download apptainer $version"
  { printf '\n%s\n' "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "engines: WARNING: pinned apptainer $APPTAINER_PIN_VERSION has left the Debian archive."
    echo "engines: WARNING: falling back to unstable's CURRENT apptainer $version (sha256 $sha)."
    echo "engines: WARNING: update APPTAINER_PIN_VERSION/APPTAINER_PIN_SHA256 in scripts/engines.sh."
    printf '%s\n\n' "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; } >&2
  ls "$apt/get"/apptainer_*.deb
}

apptainer_shim() {  # link every ELF file of the package that needs a newer glibc to the shim
  local deb=$1 shim=/usr/local/lib/librepropack-glibc-shim.so f
  local tmp; tmp=$(mktemp)
  gcc -shared -fPIC -O2 -o "$tmp" "$HERE/engines.d/glibc-shim.c"
  install -m 755 "$tmp" "$shim"; rm -f "$tmp"; ldconfig
  for f in $(dpkg-deb -c "$deb" | awk '$1 ~ /^-/ {print substr($6, 2)}'); do
    [ "$(head -c4 "$f" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ] || continue
    [ -n "$(python3 "$HERE/engines.d/elf_versions.py" needs "$f")" ] || continue
    patchelf --print-needed "$f" | grep -qx "${shim##*/}" || patchelf --add-needed "${shim##*/}" "$f"
    python3 "$HERE/engines.d/elf_versions.py" patch "$shim" "$f" || die "cannot adapt $f to glibc $glibc"
    log "linked $f to ${shim##*/} (glibc $glibc)"
  done
}

if has apptainer; then
  phase apptainer
  want_version=${APPTAINER_PIN_VERSION%-*}
  # "PIN DEB" of the last install: a fallback installed for this same pin is not fetched again every run.
  installed=$(cat "$STATE/apptainer.installed" 2>/dev/null || true)
  if apptainer --version >/dev/null 2>&1 && [ "${installed%% *}" = "$APPTAINER_PIN_VERSION" ] \
     && [ "${installed#* }" != "apptainer_${APPTAINER_PIN_VERSION}_amd64.deb" ]; then
    log "WARNING: keeping ${installed#* }, installed because the pinned apptainer $APPTAINER_PIN_VERSION left the archive"
  elif ! apptainer --version 2>/dev/null | grep -q "version $want_version"; then
    deb=$(apptainer_deb)
    log "installing $(basename "$deb") (glibc $glibc${need_shim:+, with the shim})"
    dpkg -x "$deb" /
    [ -z "$need_shim" ] || apptainer_shim "$deb"
    echo "$APPTAINER_PIN_VERSION $(basename "$deb")" >"$STATE/apptainer.installed"
  fi
  # spython runs only `singularity`; the package offers it via update-alternatives, which dpkg -x skips.
  command -v singularity >/dev/null || ln -sfn /usr/bin/apptainer /usr/local/bin/singularity
  chmod 666 /dev/fuse 2>/dev/null || true  # non-root users mount SIFs through FUSE
  apptainer --version >/dev/null || die "apptainer does not run: $(apptainer --version 2>&1 | tail -1)"
  log "$(apptainer --version); as root here, run containers with --userns (this VM's root lacks CAP_SYS_RESOURCE)"
fi

# ---------------------------------------------------------------- base image
if has base; then
  phase base
  if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    if [ -n "$debootstrap_pid" ]; then
      wait "$debootstrap_pid" || { tail -20 "$LOG-debootstrap.log"; die "debootstrap failed (see $LOG-debootstrap.log)"; }
    fi
    [ -s "$base_tar" ] || die "no rootfs tarball $base_tar"
    docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' "$base_tar" "$BASE_IMAGE" >/dev/null
  fi
  log "base image $BASE_IMAGE $(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" | cut -c1-19)"
fi

# ---------------------------------------------------------------- prove each engine runs something
phase checks
work=$(mktemp -d /var/tmp/repropack-engines-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
if has docker; then
  out=$(docker run --rm --label repropack-engines=check "$BASE_IMAGE" python3 -c 'print("docker-ok")' 2>&1) \
    && [ "$out" = docker-ok ] || die "docker cannot run a container: $out"
  log "check docker: ran python3 in $BASE_IMAGE"
fi
if has registry; then
  ref="$REGISTRY_ADDR/repropack-engines/check:latest"
  if has docker; then
    docker tag "$BASE_IMAGE" "$ref"
    docker push -q "$ref" >/dev/null || die "cannot push to the registry"
    docker rmi -f "$ref" >/dev/null
    docker pull -q "$ref" >/dev/null || die "cannot pull from the registry"
    docker rmi -f "$ref" >/dev/null
    log "check registry: pushed and pulled $ref"
  else
    curl -fsS --noproxy '*' "http://$REGISTRY_ADDR/v2/_catalog" >/dev/null || die "registry does not answer"
    log "check registry: /v2/_catalog answers"
  fi
fi
if has apptainer; then
  # lz4 rather than gzip: this check then takes 13 s instead of 30.
  out=$(apptainer -s build --mksquashfs-args '-comp lz4' "$work/check.sif" "docker-daemon:$BASE_IMAGE" 2>&1) || die "apptainer cannot build a SIF: $out"
  out=$(apptainer -s exec --userns "$work/check.sif" python3 -c 'print("apptainer-ok")' 2>&1) \
    && [ "$out" = apptainer-ok ] || die "apptainer cannot run a SIF: $out"
  log "check apptainer: built a SIF from $BASE_IMAGE and ran python3 in it"
fi
if has slurm; then
  job=$(sbatch --parsable --wait -t 1 -o /dev/null --wrap 'hostname' 2>&1) || die "sbatch failed: $job"
  state_of() { sacct -n -X -P -j "$job" -o State 2>/dev/null | sed -n 1p; }
  wait_for 60 sh -c "sacct -n -X -P -j $job -o State | grep -qx COMPLETED" \
    || die "sacct does not report job $job COMPLETED (state: '$(state_of)')"
  log "check slurm: job $job COMPLETED in sacct"
fi
if has browser; then
  out=$(timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
        --user-data-dir="$work/chromium" --dump-dom 'data:text/html,<p id=x></p><script>x.textContent="browser-"+"ok"</script>' \
        2>/dev/null) && grep -q 'browser-ok' <<<"$out" || die "headless chromium cannot run a page's script"
  log "check browser: $(chromium --version 2>/dev/null | head -1) ran a page's script headless"
fi
if has prometheus; then
  out=$(bash "$HERE/engines.d/prometheus.sh" check "$work/prometheus" 2>&1) || die "prometheus does not run: $out"
  log "check prometheus: $out"
fi
phase done
log "all requested engines work (${want[*]}) in $((SECONDS - T0)) s"
