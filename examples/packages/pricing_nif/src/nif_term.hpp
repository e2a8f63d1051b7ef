// Header-only helpers for converting between Erlang terms and C++ values
// inside NIF functions. Each supported C++ type gets a TermTraits
// specialisation with a decode/encode pair; get<T>() and make<T>() pick
// the right one at compile time.
#pragma once

#include <erl_nif.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace kin_shop::nif {

template <typename T>
struct TermTraits;

template <>
struct TermTraits<std::int64_t> {
  static bool decode(ErlNifEnv* env, ERL_NIF_TERM term, std::int64_t* out) {
    ErlNifSInt64 value = 0;
    if (!enif_get_int64(env, term, &value)) {
      return false;
    }
    *out = static_cast<std::int64_t>(value);
    return true;
  }

  static ERL_NIF_TERM encode(ErlNifEnv* env, std::int64_t value) {
    return enif_make_int64(env, static_cast<ErlNifSInt64>(value));
  }
};

template <>
struct TermTraits<std::int32_t> {
  static bool decode(ErlNifEnv* env, ERL_NIF_TERM term, std::int32_t* out) {
    int value = 0;
    if (!enif_get_int(env, term, &value)) {
      return false;
    }
    *out = static_cast<std::int32_t>(value);
    return true;
  }

  static ERL_NIF_TERM encode(ErlNifEnv* env, std::int32_t value) {
    return enif_make_int(env, value);
  }
};

// Strings travel as Elixir binaries (UTF-8), never as charlists.
template <>
struct TermTraits<std::string> {
  static bool decode(ErlNifEnv* env, ERL_NIF_TERM term, std::string* out) {
    ErlNifBinary bin;
    if (!enif_inspect_binary(env, term, &bin)) {
      return false;
    }
    out->assign(reinterpret_cast<const char*>(bin.data), bin.size);
    return true;
  }

  static ERL_NIF_TERM encode(ErlNifEnv* env, const std::string& value) {
    ERL_NIF_TERM term;
    unsigned char* data = enif_make_new_binary(env, value.size(), &term);
    if (!value.empty()) {
      std::memcpy(data, value.data(), value.size());
    }
    return term;
  }
};

template <typename T>
inline bool get(ErlNifEnv* env, ERL_NIF_TERM term, T* out) {
  return TermTraits<T>::decode(env, term, out);
}

template <typename T>
inline ERL_NIF_TERM make(ErlNifEnv* env, const T& value) {
  return TermTraits<T>::encode(env, value);
}

// Decodes a proper list whose elements all decode as T. Fails on improper
// lists and on the first element of the wrong type.
template <typename T>
bool get_list(ErlNifEnv* env, ERL_NIF_TERM list, std::vector<T>* out) {
  unsigned length = 0;
  if (!enif_get_list_length(env, list, &length)) {
    return false;
  }
  out->clear();
  out->reserve(length);

  ERL_NIF_TERM head;
  ERL_NIF_TERM tail = list;
  while (enif_get_list_cell(env, tail, &head, &tail)) {
    T value{};
    if (!get(env, head, &value)) {
      return false;
    }
    out->push_back(std::move(value));
  }
  return true;
}

inline ERL_NIF_TERM atom(ErlNifEnv* env, const char* name) {
  ERL_NIF_TERM result;
  if (enif_make_existing_atom(env, name, &result, ERL_NIF_LATIN1)) {
    return result;
  }
  return enif_make_atom(env, name);
}

inline ERL_NIF_TERM ok(ErlNifEnv* env, ERL_NIF_TERM value) {
  return enif_make_tuple2(env, atom(env, "ok"), value);
}

inline ERL_NIF_TERM error(ErlNifEnv* env, const char* reason) {
  return enif_make_tuple2(env, atom(env, "error"), atom(env, reason));
}

// {error, {Reason, Detail}}
inline ERL_NIF_TERM error(ErlNifEnv* env, const char* reason, ERL_NIF_TERM detail) {
  return enif_make_tuple2(env, atom(env, "error"), enif_make_tuple2(env, atom(env, reason), detail));
}

}  // namespace kin_shop::nif
