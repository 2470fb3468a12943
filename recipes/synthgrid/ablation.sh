#!/usr/bin/env bash
# The ablation table of recipes/synthgrid/README.md (guidance and sampler), on a fixed subset of test-unseen.
#
#   bash recipes/synthgrid/ablation.sh CORPUS MODEL OUT [EVERY] [EVERY_SLOW]
#
# CORPUS: a SynthGRID corpus (its test-unseen.jsonl and clips); MODEL: a pipeline directory (or bundled name);
# OUT: output folder. Rows are voiced with `l2s synthesize` (one seed) and scored with `l2s evaluate`
# (Whisper tiny.en, never the guide ASR): every EVERY-th clip of test-unseen (default 5), and every
# EVERY_SLOW-th (default 25) for the 400-step schedule and the fast sampler it is compared with.
# Each row's report.md and report.json land in OUT/eval/<row>/. One thread per process, as benchmarked.
# The 400-step row starts from pure noise (--start-step 0), as LipVoicer does; the others use the model's
# sampler settings (pipeline.yaml). The guided rows (ASR with the VSR text, with the true text, and the 400-step
# LipVoicer schedule) use the ASR weight W_ASR (environment; default 1.5, LipVoicer's), whatever the default
# of the model is.
set -euo pipefail
CORPUS=${1:?corpus folder}; MODEL=${2:?pipeline}; OUT=${3:?output folder}
EVERY=${4:-5}; EVERY_SLOW=${5:-25}
W_ASR=${W_ASR:-1.5}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT/eval"

subset() {  # subset N NAME: every N-th row of test-unseen -> OUT/NAME.jsonl, and its video list
  awk -v n="$1" '(NR - 1) % n == 0' "$CORPUS/test-unseen.jsonl" > "$OUT/$2.jsonl"
  python -c 'import json, sys, os; [print(os.path.join(sys.argv[1], json.loads(l)["video"])) for l in open(sys.argv[2])]' \
    "$CORPUS" "$OUT/$2.jsonl" > "$OUT/$2.videos"
  # manifest paths are relative to the corpus root
  python -c 'import json, sys, os
rows = [json.loads(l) for l in open(sys.argv[2])]
with open(sys.argv[2], "w") as f:
    for r in rows:
        r["wav"] = os.path.join(sys.argv[1], r["wav"]); f.write(json.dumps(r) + "\n")' "$CORPUS" "$OUT/$2.jsonl"
}
row() {  # row NAME SUBSET [synthesize options...]
  local name=$1 set=$2; shift 2
  mapfile -t videos < "$OUT/$set.videos"
  l2s synthesize "${videos[@]}" -o "$OUT/$name" --model "$MODEL" --seed 0 --device cpu "$@"
  l2s evaluate --ref "$OUT/$set.jsonl" --hyp "$OUT/$name" --metrics wer,stoi,estoi,dnsmos --out "$OUT/eval/$name"
}

subset "$EVERY" main
subset "$EVERY_SLOW" slow
# ROWS (environment) picks rows, e.g. to run two halves on two cores at once (ROWS="" only makes the subsets)
for r in ${ROWS-ground_truth no_asr asr_vsr asr_truth fast_slowset lipvoicer_400}; do
  case $r in
    ground_truth) l2s evaluate --ref "$OUT/main.jsonl" --hyp "$OUT/main.jsonl" --metrics wer,stoi,estoi,dnsmos \
                    --out "$OUT/eval/ground_truth" ;;
    no_asr) row no_asr main --w-asr 0 ;;
    asr_vsr) row asr_vsr main --w-asr "$W_ASR" ;;
    asr_truth) row asr_truth main --text-from-txt --w-asr "$W_ASR" ;;
    fast_slowset) row fast_slowset slow ;;
    lipvoicer_400) row lipvoicer_400 slow --solver ddpm --steps 400 --start-step 0 --w-asr "$W_ASR" ;;
    *) echo "unknown row $r" >&2; exit 2 ;;
  esac
done
