{
  "targets": [
    {
      "target_name": "crmigrate_native",
      "sources": [
        "native/addon/main.cc",
        "native/addon/ptrace_ops.cc",
        "native/addon/memory_ops.cc",
        "native/addon/process_ops.cc",
        "native/addon/tracking_ops.cc",
        "native/common/crc32c.c"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O2"]
    }
  ]
}
