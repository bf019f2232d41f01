# Find cancelproxy's dependencies; a missing one stops with the Debian package to install.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config")
endif()

macro(cp_require_pkg var module debpkg)
  pkg_check_modules(${var} IMPORTED_TARGET ${module})
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "${module} not found: apt-get install ${debpkg}")
  endif()
endmacro()

cp_require_pkg(LIBEVENT "libevent>=2.1" libevent-dev)
cp_require_pkg(LIBEVENT_OPENSSL "libevent_openssl>=2.1" libevent-dev)
cp_require_pkg(LIBEVENT_PTHREADS "libevent_pthreads>=2.1" libevent-dev)
cp_require_pkg(OPENSSL "openssl>=3.0" libssl-dev)
cp_require_pkg(CJSON "libcjson>=1.7" libcjson-dev)
cp_require_pkg(HIREDIS "hiredis>=0.14" libhiredis-dev)

set(LLHTTP_SRC_DIR /usr/share/llhttp CACHE PATH "llhttp C sources (Debian node-llhttp)")
set(LLHTTP_INC_DIR /usr/share/include/llhttp CACHE PATH "llhttp header (Debian node-llhttp)")
if(NOT EXISTS ${LLHTTP_SRC_DIR}/llhttp.c OR NOT EXISTS ${LLHTTP_INC_DIR}/llhttp.h)
  message(FATAL_ERROR "llhttp sources not found in ${LLHTTP_SRC_DIR}: apt-get install node-llhttp")
endif()

if(CANCELPROXY_TESTS)
  cp_require_pkg(CRITERION "criterion>=2.3" libcriterion-dev)
endif()
