#!/usr/bin/env bash
# Installs Debian's OpenLDAP server (slapd) and client tools, starts a private slapd on a loopback
# port with the test suffix dc=example,dc=test and a seed LDIF, and hands its address to the
# tests (scripts/test.sh's contract: `export` lines to $SCIMSYNC_TEST_ENV, the pid to
# $SCIMSYNC_TEST_PIDS). Never uses a system slapd the package may have started on 389: ours has
# its own config, database and port.
set -euo pipefail
: "${SCIMSYNC_TEST_RUN_DIR:?run from scripts/test.sh}"
: "${SCIMSYNC_TEST_ENV:?run from scripts/test.sh}"
: "${SCIMSYNC_TEST_PIDS:?run from scripts/test.sh}"

if [ ! -x /usr/sbin/slapd ] || ! command -v ldapadd >/dev/null || ! command -v ldapsearch >/dev/null; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "slapd.sh: slapd is not installed and this is not root; LDAP tests will be skipped" >&2
    exit 0
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends slapd ldap-utils >/dev/null
  # The package may start a system slapd on 389; we never use it, and leaving it off keeps the
  # machine as it was for everything else.
  if command -v systemctl >/dev/null && systemctl is-active --quiet slapd 2>/dev/null; then
    $SUDO systemctl stop slapd || true
    $SUDO systemctl disable slapd >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/slapd ]; then
    $SUDO /etc/init.d/slapd stop >/dev/null 2>&1 || true
  fi
fi

dir="$SCIMSYNC_TEST_RUN_DIR/slapd"
mkdir -p "$dir/db"
# A free loopback port, picked by the kernel.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)))"
base="dc=example,dc=test"
rootdn="cn=admin,$base"
password="scimsync-test-$RANDOM$RANDOM"
modules=/usr/lib/ldap
[ -d "$modules" ] || modules="$(dirname "$(find /usr/lib -name 'back_mdb.so*' -print -quit)")"

cat >"$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
# nsAccountLock is 389-DS/Red Hat's lock flag, not in OpenLDAP's schemas; defined here (its
# registered OID, user-modifiable) with an auxiliary class (OpenLDAP's experimental arc) so the
# tests can lock accounts the way those directories do.
attributetype ( 2.16.840.1.113730.3.1.610 NAME 'nsAccountLock' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.99.1 NAME 'scimsyncLockable' AUXILIARY MAY nsAccountLock )
pidfile $dir/slapd.pid
modulepath $modules
moduleload back_mdb
sizelimit unlimited
database mdb
maxsize 104857600
suffix "$base"
rootdn "$rootdn"
rootpw $password
directory $dir/db
index objectClass eq
CONF

# The Debian package runs slapd as the openldap user; ours runs as whoever runs the tests, so
# the database directory is theirs.
/usr/sbin/slapd -h "ldap://127.0.0.1:$port/" -f "$dir/slapd.conf" -d 0 >"$dir/slapd.log" 2>&1 &
pid=$!
echo "$pid" >>"$SCIMSYNC_TEST_PIDS"

ready=""
for _ in $(seq 1 100); do
  if ldapsearch -x -H "ldap://127.0.0.1:$port/" -b "" -s base namingContexts >/dev/null 2>&1; then
    ready=1; break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "slapd.sh: slapd did not answer on 127.0.0.1:$port within 10 s:" >&2
  cat "$dir/slapd.log" >&2 || true
  exit 1
fi

# The seed: the suffix, and ou=people/ou=groups with one user and one group, so a hand run of
# ldapsearch shows the layout. Tests make their own ou=test-<unique> subtrees.
ldapadd -x -H "ldap://127.0.0.1:$port/" -D "$rootdn" -w "$password" >/dev/null <<LDIF
dn: $base
objectClass: dcObject
objectClass: organization
o: Example Test
dc: example

dn: ou=people,$base
objectClass: organizationalUnit
ou: people

dn: ou=groups,$base
objectClass: organizationalUnit
ou: groups

dn: uid=seed,ou=people,$base
objectClass: inetOrgPerson
uid: seed
cn: Seed User
givenName: Seed
sn: User
mail: seed@example.test

dn: cn=Miro Users,ou=groups,$base
objectClass: groupOfNames
cn: Miro Users
member: uid=seed,ou=people,$base
LDIF

{
  echo "export SCIMSYNC_TEST_LDAP_URL='ldap://127.0.0.1:$port/'"
  echo "export SCIMSYNC_TEST_LDAP_BIND_DN='$rootdn'"
  echo "export SCIMSYNC_TEST_LDAP_PASSWORD='$password'"
  echo "export SCIMSYNC_TEST_LDAP_BASE='$base'"
} >>"$SCIMSYNC_TEST_ENV"
echo "slapd.sh: slapd (pid $pid) on ldap://127.0.0.1:$port/, base $base"
