# repropack: sourced (BASH_ENV) by a step's bash before its script: join its cgroups (see cgroups.py)
for _rp in $REPROPACK_CGROUP; do echo $$ >"$_rp"; done; unset _rp BASH_ENV REPROPACK_CGROUP
