#!/bin/sh
# The job-side results script for nodes without python3 (POSIX sh, coreutils' sha256sum, stat, date,
# timeout): the same records as jobside.py with coarser figures (no CPU time, no peak memory).
# Usage: jobside.sh TASKS_SH INDEX RUN_DIR WRITER JOB_ID
# TASKS_SH (written by the backend) defines element_<INDEX>, which calls `member` once per instance:
#   member INSTANCE_JSON ATTEMPT CWD STDOUT STDERR REDIRECT TIME ENV_FILE PACK_INDEX OUTPUTS -- ARGV...
#   (INSTANCE_JSON is already a JSON string; OUTPUTS is "declared_json<TAB>written;..." or "")
set -u
tasks=$1 index=$2 run_dir=$3 writer=$4 job_id=$5
mkdir -p "$run_dir/results" "$run_dir/streams"
results="$run_dir/results/$writer.jsonl"
streams="$run_dir/streams/$writer.log"
worst=0

frame() {  # instance_json attempt stream file -> prints a streams entry or nothing
  [ -s "$4" ] || return 0
  len=$(stat -c %s "$4")
  head="#repropack-stream {\"instance\":$1,\"attempt\":$2,\"stream\":\"$3\",\"length\":$len}"
  before=$(stat -c %s "$streams" 2>/dev/null || echo 0)
  { printf '%s\n' "$head"; cat "$4"; printf '\n'; } >> "$streams"
  offset=$((before + ${#head} + 1))
  printf '"%s":{"file":"streams/%s.log","offset":%d,"length":%d}' "$3" "$writer" "$offset" "$len"
}

member() {
  inst=$1 attempt=$2 cwd=$3 out=$4 err=$5 redirect=$6 limit=$7 envfile=$8 pack=$9
  shift 9
  outputs=$1; shift 2  # OUTPUTS --
  start=$(date +%s.%N)
  if [ "$redirect" = 1 ]; then o=$out e=$err; else o=/dev/null e=/dev/null; fi
  if [ -n "$limit" ] && command -v timeout >/dev/null 2>&1; then t="timeout -k 5 $limit"; else t=""; fi
  (cd "$cwd" && exec env -i /bin/sh -c '. "$1"; shift; exec "$@"' jobside "$envfile" $t "$@") \
    </dev/null >"$o" 2>"$e"
  code=$?
  end=$(date +%s.%N)
  failure=null message='""' sig=null
  if [ -n "$t" ] && [ "$code" = 124 ]; then failure='"timeout"' message="\"time limit of $limit s exceeded\""
  elif [ "$code" -gt 128 ] && [ "$code" -le 192 ]; then sig=$((code - 128)); failure='"signal"' message="\"killed by signal $sig\""
  elif [ "$code" != 0 ]; then failure='"exit"' message="\"exit code $code\""
  fi
  outs=""
  if [ "$code" = 0 ]; then
    old_ifs=$IFS; IFS=';'
    for pair in $outputs; do
      declared=${pair%%"	"*} written=${pair#*"	"}
      [ -f "$cwd/$written" ] || continue
      sum=$(sha256sum "$cwd/$written" | cut -d' ' -f1); size=$(stat -c %s "$cwd/$written")
      outs="$outs${outs:+,}{\"path\":$declared,\"sha256\":\"$sum\",\"size\":$size,\"type\":\"file\"}"
    done
    IFS=$old_ifs
  else
    worst=1
  fi
  s1=$(frame "$inst" "$attempt" stdout "$out"); s2=$(frame "$inst" "$attempt" stderr "$err")
  wall=$(echo "$end $start" | awk '{printf "%.6f", $1 - $2}')
  printf '{"format":2,"instance":%s,"attempt":%d,"writer":"%s","backend":"slurm","job_id":"%s","pack_index":%d,"start":%s,"end":%s,"wall":%s,"cpu":null,"cpu_source":null,"peak_rss":null,"peak_rss_source":null,"exit_status":%d,"signal":%s,"failure":%s,"message":%s,"outputs":[%s],"streams":{%s%s%s},"staging":{},"failed_dir":null}\n' \
    "$inst" "$attempt" "$writer" "$job_id" "$pack" "$start" "$end" "$wall" "$code" "$sig" "$failure" "$message" \
    "$outs" "$s1" "${s1:+${s2:+,}}" "$s2" >> "$results"
}

. "$tasks"
"element_$index"
exit $worst
