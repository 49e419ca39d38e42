#!/usr/bin/env bash
# Leave-one-category-out on NAB: for each category of the data folder, the
# flag threshold and cool-down are chosen from a small grid around the
# shipped settings (examples/nab.toml) by the standard score of the other
# categories together, and the held-out category is scored with the
# choice. Prints one line per configuration and category, then the
# held-out results. 10 to 17 minutes on two cores for nab-dev, by machine.
#
#   scripts/nab-loco.sh [DATA LABELS]
set -euo pipefail
cd "$(dirname "$0")/.."

data=${1:-../shared/data/nab-dev/data}
labels=${2:-../shared/data/nab-dev/labels/combined_windows.json}
# the shipped settings, read from the config so the grid follows it
shipped() { awk -F' = ' -v key="$1" '$1 == key { print $2; exit }' examples/nab.toml; }
shipped_threshold=$(shipped value)
shipped_cooldown=$(shipped cooldown_events)
mapfile -t thresholds < <(printf '%s\n' 0.5 "$shipped_threshold" 0.6 0.65 | sort -gu)
mapfile -t cooldowns < <(printf '%s\n' 100 "$shipped_cooldown" 600 | sort -gu)

cargo build --release --quiet
tidewatch=target/release/tidewatch
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mapfile -t categories < <(find "$data" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)

# standard score, detected/windows and false positives of one run
standard() {
    "$tidewatch" eval nab --data "$data" --labels "$labels" "$@" 2>/dev/null |
        awk '$1 == "standard" { print $2, $4, $5 }'
}

for threshold in "${thresholds[@]}"; do
    for cooldown in "${cooldowns[@]}"; do
        config="$work/$threshold-$cooldown.toml"
        sed -e "s/^value = .*/value = $threshold/" \
            -e "s/^learn_below_score = .*/learn_below_score = $threshold/" \
            -e "s/^cooldown_events = .*/cooldown_events = $cooldown/" examples/nab.toml >"$config"
        for held_out in "${categories[@]}"; do
            others=()
            for c in "${categories[@]}"; do
                [ "$c" = "$held_out" ] || others+=(--category "$c")
            done
            tuned=$(standard --config "$config" "${others[@]}")
            alone=$("$tidewatch" eval nab --data "$data" --labels "$labels" --config "$config" \
                --category "$held_out" 2>/dev/null |
                awk '$1 ~ /^(standard|reward)/ { printf "%s %s %s ", $2, $4, $5 }')
            echo "$threshold $cooldown $held_out | others: $tuned | alone: $alone" | tee -a "$work/results"
        done
    done
done

echo
echo "held out: threshold, cool-down chosen on the others -> standard / low FP / low FN (detected, false positives) of the held-out category"
for held_out in "${categories[@]}"; do
    # the best standard score on the other categories; the shipped settings win ties
    awk -v c="$held_out" -v t="$shipped_threshold" -v d="$shipped_cooldown" \
        '$3 == c { print ($1 == t && $2 == d ? 1 : 0), $6, $0 }' "$work/results" |
        sort -k2,2gr -k1,1nr | head -1 | cut -d' ' -f3- |
        awk '{ printf "%s: %s, %s -> %s / %s / %s (%s, %s false positives)\n", $3, $1, $2, $11, $14, $17, $12, $13 }'
done
