#!/bin/sh
# Render assets/icons/handviz.svg to the PNG sizes desktops ask for.
# Needs rsvg-convert (Debian/Ubuntu: `apt-get install -y librsvg2-bin`).
set -eu
cd "$(dirname "$0")/../assets/icons"
for size in 16 32 48 64 128 256 512; do
    rsvg-convert --width "$size" --height "$size" handviz.svg --output "handviz-$size.png"
done
