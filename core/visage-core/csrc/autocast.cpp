// The autocast switches of libtorch that tch 0.24 does not expose: the
// reduced-precision dtype per device type, and CPU autocast. Mirrors what
// PyTorch's `torch.autocast` context manager does on enter and exit.
// No C++ exception crosses into Rust: every entry point returns 0 on success
// and -1 on failure.
#include <ATen/autocast_mode.h>

namespace {
bool device_type(int device, at::DeviceType *out) {
  switch (device) {
    case 0: *out = at::kCPU; return true;
    case 1: *out = at::kCUDA; return true;
    default: return false;
  }
}
}  // namespace

extern "C" {

// Enables autocast on `device` (0 CPU, 1 CUDA) with `dtype` (a
// c10::ScalarType code) and reports the previous state for the exit call.
int visage_autocast_enter(int device, int dtype, int *was_enabled, int *was_dtype) noexcept {
  try {
    at::DeviceType type;
    if (!device_type(device, &type)) return -1;
    *was_enabled = at::autocast::is_autocast_enabled(type) ? 1 : 0;
    *was_dtype = static_cast<int>(at::autocast::get_autocast_dtype(type));
    at::autocast::set_autocast_enabled(type, true);
    at::autocast::set_autocast_dtype(type, static_cast<at::ScalarType>(dtype));
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return -1;
  }
}

// Restores the state `visage_autocast_enter` reported; the outermost exit
// clears the cache of casted weights.
int visage_autocast_exit(int device, int was_enabled, int was_dtype) noexcept {
  try {
    at::DeviceType type;
    if (!device_type(device, &type)) return -1;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(type, was_enabled != 0);
    at::autocast::set_autocast_dtype(type, static_cast<at::ScalarType>(was_dtype));
    return 0;
  } catch (...) {
    return -1;
  }
}

// Whether autocast is on for `device`, and its dtype: 0 or 1, or -1.
int visage_autocast_state(int device, int *dtype) noexcept {
  try {
    at::DeviceType type;
    if (!device_type(device, &type)) return -1;
    *dtype = static_cast<int>(at::autocast::get_autocast_dtype(type));
    return at::autocast::is_autocast_enabled(type) ? 1 : 0;
  } catch (...) {
    return -1;
  }
}

}  // extern "C"
