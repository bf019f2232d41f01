# Install rules beyond the programs: man pages, example configs, the systemd
# unit and the logrotate snippet. Included from the top-level CMakeLists.txt
# after include(GNUInstallDirs); every destination is relative to the install
# prefix, so `cmake --install build --prefix /tmp/stage` stages all of it.
#
# A package built with --prefix /usr usually wants
#   -DCMAKE_INSTALL_SYSCONFDIR=/etc   (the logrotate snippet in /etc/logrotate.d)
# and may move the unit with -DCANCELPROXY_SYSTEMD_UNITDIR=... .

set(CANCELPROXY_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
  "Where the systemd unit goes (relative to the install prefix, or absolute)")
# Follows CMAKE_INSTALL_SYSCONFDIR unless set on the command line.
if(NOT DEFINED CANCELPROXY_LOGROTATEDIR)
  set(CANCELPROXY_LOGROTATEDIR "${CMAKE_INSTALL_SYSCONFDIR}/logrotate.d")
endif()

install(FILES man/cancelproxy-mock.1 man/cancelproxy-log.1
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES man/cancelproxy.conf.5
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES man/cancelproxy.8
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

# Listed, not globbed: a new example is installed on purpose, and
# tests/integration/test_install.c names every installed file.
install(FILES
    examples/openai.json
    examples/anthropic.json
    examples/vllm.json
    examples/ollama.json
    examples/chain-edge.json
    examples/chain-core.json
    examples/demo.json
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

install(FILES dist/cancelproxy.logrotate
  DESTINATION ${CANCELPROXY_LOGROTATEDIR}
  RENAME cancelproxy)

# The unit names /usr/sbin/cancelproxy; at install time that becomes the
# path the daemon is really installed to (unchanged for --prefix /usr), so
# that an install under /usr/local or a staging prefix stays consistent.
install(CODE "
  set(cp_sbindir \"${CMAKE_INSTALL_SBINDIR}\")
  if(NOT IS_ABSOLUTE \"\${cp_sbindir}\")
    set(cp_sbindir \"\${CMAKE_INSTALL_PREFIX}/\${cp_sbindir}\")
  endif()
  file(READ \"${CMAKE_CURRENT_SOURCE_DIR}/dist/cancelproxy.service\" cp_unit)
  string(REPLACE \"/usr/sbin/cancelproxy \" \"\${cp_sbindir}/cancelproxy \" cp_unit \"\${cp_unit}\")
  file(WRITE \"${CMAKE_CURRENT_BINARY_DIR}/dist/cancelproxy.service\" \"\${cp_unit}\")
  set(cp_unitdir \"${CANCELPROXY_SYSTEMD_UNITDIR}\")
  if(NOT IS_ABSOLUTE \"\${cp_unitdir}\")
    set(cp_unitdir \"\${CMAKE_INSTALL_PREFIX}/\${cp_unitdir}\")
  endif()
  file(INSTALL DESTINATION \"\${cp_unitdir}\" TYPE FILE
    FILES \"${CMAKE_CURRENT_BINARY_DIR}/dist/cancelproxy.service\")
")
