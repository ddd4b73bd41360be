{
  "targets": [
    {
      "target_name": "fanotify",
      "sources": [
        "native/addon.cc",
        "native/convert.cc",
        "native/decoder.cc",
        "native/enrich.cc",
        "native/errors.cc",
        "native/low_level.cc",
        "native/mounts.cc",
        "native/paths.cc",
        "native/pending.cc",
        "native/process_info.cc",
        "native/reader.cc",
        "native/reader_consumer.cc",
        "native/reader_wrap.cc",
        "native/scope.cc",
        "native/walker.cc",
        "native/walker_wrap.cc",
        "native/wrap_close.cc",
        "native/wrap_delivery.cc",
        "native/wrap_lifetime.cc",
        "native/wrap_options.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-lpthread"]
    }
  ]
}
