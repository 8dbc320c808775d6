{
  "targets": [
    {
      "target_name": "tcp_leak_agent",
      "sources": ["native/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra"],
      "conditions": [
        ["OS=='linux'", { "sources": ["native/tcp_posix.cc", "native/tcp_linux.cc", "native/tcp_diag_linux.cc"] }],
        ["OS=='mac' or OS=='freebsd'", { "sources": ["native/tcp_posix.cc", "native/tcp_bsd.cc"] }],
        ["OS=='mac'", { "xcode_settings": { "OTHER_CFLAGS": ["-O2", "-Wall", "-Wextra"] } }]
      ]
    }
  ]
}
