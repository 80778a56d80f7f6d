#!/usr/bin/env bash
# Sets up abft on a Debian bookworm machine that has Node.js and npm:
#   - Bun, through npm;
#   - the Vulkan loader (libvulkan1) and Mesa's lavapipe (mesa-vulkan-drivers) from
#     bookworm-backports: Mesa 25, a CPU Vulkan driver Dawn accepts (bookworm's own Mesa 22 is too
#     old). On a GPU server the NVIDIA driver's Vulkan ICD is preferred automatically; lavapipe
#     only serves machines without a GPU;
#   - Slurm (slurm-wlm), used only by the test of `abft sweep --slurm`;
#   - the project's dependencies, from the lockfile.
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

if ! command -v bun >/dev/null 2>&1; then
  echo "setup: installing Bun through npm"
  $SUDO npm install -g --silent bun
fi
echo "setup: bun $(bun --version)"

mesa_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }
if command -v apt-get >/dev/null 2>&1; then
  case "$(mesa_version)" in
    2[5-9]*|[3-9][0-9]*) echo "setup: mesa-vulkan-drivers $(mesa_version) already installed" ;;
    *)
      # Add bookworm-backports with the mirror this machine already uses.
      if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        uri=$(grep -hs "^URIs:" /etc/apt/sources.list.d/*.sources | grep -v security | head -1 | awk '{print $2}')
        [ -n "$uri" ] || uri=$(grep -hs "^deb " /etc/apt/sources.list | grep -v security | head -1 | awk '{print $2}')
        [ -n "$uri" ] || { echo "setup: no Debian mirror found in /etc/apt to add bookworm-backports" >&2; exit 1; }
        echo "setup: adding bookworm-backports from $uri"
        printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
          | $SUDO tee /etc/apt/sources.list.d/abft-backports.sources >/dev/null
      fi
      echo "setup: installing libvulkan1 and mesa-vulkan-drivers from bookworm-backports"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports libvulkan1 mesa-vulkan-drivers >/dev/null
      echo "setup: mesa-vulkan-drivers $(mesa_version)"
      ;;
  esac
else
  echo "setup: no apt-get here; make sure a Vulkan driver and libvulkan.so.1 are installed" >&2
fi

# Slurm (slurmctld, slurmd, munge) for the test of `abft sweep --slurm`, which starts its own
# single-node cluster (test/analysis/slurm.test.ts); no daemon is started here.
if command -v apt-get >/dev/null 2>&1 && ! command -v slurmctld >/dev/null 2>&1 && ! [ -x /usr/sbin/slurmctld ]; then
  slurm_install() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends slurm-wlm >/dev/null 2>&1; }
  slurm_install || { $SUDO apt-get update -qq && slurm_install; } || echo "setup: could not install slurm-wlm (only the Slurm test needs it)" >&2
  command -v slurmctld >/dev/null 2>&1 || [ -x /usr/sbin/slurmctld ] && echo "setup: slurm-wlm $(dpkg-query -W -f='${Version}' slurm-wlm)"
fi

bun install --frozen-lockfile
