#!/usr/bin/env bash
# Runtime stage, step 3: SSH between the containers of one job, as MPI needs it: one key
# pair for root that every container of the image shares (baked in, as in the SageMaker
# framework images), no host-key prompts between algo-* hosts, the pam_loginuid fix
# (a container cannot set the login uid, which would end every session), and sshd's
# privilege separation directory. Idempotent: an existing key is kept.
set -euo pipefail
mkdir -p /root/.ssh /run/sshd
chmod 700 /root/.ssh
if [ ! -f /root/.ssh/id_rsa ]; then
  ssh-keygen -q -t rsa -b 4096 -N '' -C smlaunch-image -f /root/.ssh/id_rsa
fi
touch /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
grep -qxF "$(cat /root/.ssh/id_rsa.pub)" /root/.ssh/authorized_keys || cat /root/.ssh/id_rsa.pub >> /root/.ssh/authorized_keys

# SageMaker (and docker compose, and `smlaunch local`) name the hosts algo-1, algo-2, ...
mkdir -p /etc/ssh/ssh_config.d /etc/ssh/sshd_config.d
cat > /etc/ssh/ssh_config.d/smlaunch.conf <<'CONF'
Host algo-*
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
CONF
cat > /etc/ssh/sshd_config.d/smlaunch.conf <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
CONF
if [ -f /etc/pam.d/sshd ]; then
  sed -i 's/^session\s\+required\s\+pam_loginuid\.so/session optional pam_loginuid.so/' /etc/pam.d/sshd
fi
# Host keys: made here when the image has none (a container must not wait for them).
ssh-keygen -A >/dev/null
/usr/sbin/sshd -t
echo "ssh-for-mpi.sh: ok"
