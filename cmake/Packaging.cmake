# The Debian package: `cmake --preset daemon && cmake --build --preset daemon --target package`
# writes build/daemon/dnsmon_<version>-1_<arch>.deb. CPack installs the project into a staging
# tree with the packaging prefix /usr, so the binary lands in /usr/bin and the man page in
# /usr/share/man/man8. The daemon preset puts the units in /lib/systemd/system (Debian 12's place)
# and the example configuration in /etc/dnsmon, where the units look for it; it is a conffile
# (debian/conffiles), so upgrades keep an operator's edits. A build with a relative sysconfdir
# would put the configuration under /usr, so such a build has no package target.
include(GNUInstallDirs)
if(NOT CMAKE_INSTALL_SYSCONFDIR STREQUAL "/etc")
  message(STATUS "Debian package: CMAKE_INSTALL_SYSCONFDIR is ${CMAKE_INSTALL_SYSCONFDIR}, not /etc; "
                 "the package target is not available (use the daemon preset)")
  return()
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME dnsmon)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "dnsmon maintainers")
set(CPACK_PACKAGE_CONTACT "dnsmon maintainers <maintainers@users.noreply.r-seed-c6925e1e.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "DNS traffic monitor exporting Prometheus metrics")
set(CPACK_PACKAGE_DESCRIPTION
  "dnsmon captures DNS traffic on network interfaces (a tap, a mirror port or
the DNS server itself) or replays pcap and pcapng files, decodes every message
(UDP, TCP with stream reassembly, IP fragments, tunnels, EDNS), matches
queries with responses and serves what it sees as Prometheus metrics:
counters by type and rcode, a latency histogram, and sliding-window top-N
domains, names and clients with distinct counts. It runs under systemd as a
transient user with CAP_NET_RAW only (dnsmon.service, or dnsmon@IFACE.service
per interface).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The shared libraries' packages come from dpkg-shlibdeps (dpkg-dev); publicsuffix holds the
# Public Suffix List that the registrable-domain tables read at start; procps has /bin/kill, the
# units' ExecReload= (a minimal Debian has no procps, and `systemctl reload` fails there).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "publicsuffix, procps")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${CMAKE_CURRENT_LIST_DIR}/debian/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
