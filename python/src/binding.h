// What the C++ files of the Python binding (packice._packice) share: statuses raised as
// packice exceptions, and calls run with the GIL released.
#ifndef PACKICE_PYTHON_SRC_BINDING_H_
#define PACKICE_PYTHON_SRC_BINDING_H_

#include <pybind11/pybind11.h>

#include <string>
#include <string_view>
#include <utility>

#include "packice/status.h"

namespace packice_py {

namespace py = pybind11;

inline bool InterpreterFinalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

// The packice exception for `status` (packice.errors maps codes to classes), not raised.
// REQUIRES: !status.ok(); the GIL is held.
inline py::object MakeError(const packice::Status& status) {
  return py::module_::import("packice.errors")
      .attr("_from_status")(static_cast<int>(status.code()), std::string(status.message()));
}

// Raises `error`, an exception object. REQUIRES: the GIL is held.
[[noreturn]] inline void RaiseObject(const py::object& error) {
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
  throw py::error_already_set();
}

// Raises the packice exception for `status`. REQUIRES: !status.ok(); the GIL is held.
[[noreturn]] inline void Raise(const packice::Status& status) { RaiseObject(MakeError(status)); }

inline void Check(const packice::Status& status) {
  if (!status.ok()) Raise(status);
}

template <typename T>
T Take(packice::Result<T>&& result) {
  if (!result.ok()) Raise(result.status());
  return std::move(result).value();
}

// `s` as Python bytes (a copy). REQUIRES: the GIL is held.
inline py::bytes Bytes(std::string_view s) { return py::bytes(s.data(), s.size()); }

// Runs `fn` with the GIL released (when the interpreter is not shutting down: then nothing else
// may run, and releasing the GIL is not allowed).
template <typename Fn>
auto WithoutGil(Fn&& fn) {
  if (InterpreterFinalizing() || !PyGILState_Check()) return fn();
  py::gil_scoped_release release;
  return fn();
}

// Adds the KV's classes and functions to the module (kv_binding.cc).
void BindKv(py::module_& m);
// Adds the queue's classes and functions (queue_binding.cc).
void BindQueue(py::module_& m);

}  // namespace packice_py

#endif  // PACKICE_PYTHON_SRC_BINDING_H_
