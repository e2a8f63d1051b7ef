/*
 * CRC-32 and Adler-32 NIFs for KinShop.Native.Checksum.
 *
 * Both functions accept a binary or any iodata. Inputs larger than
 * DIRTY_THRESHOLD bytes are rescheduled onto a dirty CPU scheduler so a
 * big warehouse export cannot block a normal scheduler thread.
 */
#include <erl_nif.h>

#include <stddef.h>
#include <stdint.h>

#define DIRTY_THRESHOLD (64 * 1024)
#define CRC32_POLY 0xEDB88320u
#define ADLER_MOD 65521u
/* Largest n such that 255n(n+1)/2 + (n+1)(ADLER_MOD-1) fits in 32 bits. */
#define ADLER_NMAX 5552

static uint32_t crc_table[256];

static void build_crc_table(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (CRC32_POLY ^ (c >> 1)) : (c >> 1);
        }
        crc_table[n] = c;
    }
}

static uint32_t crc32_update(uint32_t crc, const unsigned char *data, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc = crc_table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
    }
    return ~crc;
}

static uint32_t adler32_update(uint32_t adler, const unsigned char *data, size_t len)
{
    uint32_t a = adler & 0xFFFFu;
    uint32_t b = (adler >> 16) & 0xFFFFu;

    while (len > 0) {
        size_t chunk = len < ADLER_NMAX ? len : ADLER_NMAX;
        len -= chunk;
        while (chunk--) {
            a += *data++;
            b += a;
        }
        a %= ADLER_MOD;
        b %= ADLER_MOD;
    }
    return (b << 16) | a;
}

static int inspect_input(ErlNifEnv *env, ERL_NIF_TERM term, ErlNifBinary *bin)
{
    if (enif_inspect_binary(env, term, bin)) {
        return 1;
    }
    return enif_inspect_iolist_as_binary(env, term, bin);
}

static ERL_NIF_TERM crc32_dirty(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    ErlNifBinary bin;
    if (argc != 1 || !inspect_input(env, argv[0], &bin)) {
        return enif_make_badarg(env);
    }
    return enif_make_uint(env, crc32_update(0, bin.data, bin.size));
}

static ERL_NIF_TERM crc32_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    ErlNifBinary bin;
    if (argc != 1 || !inspect_input(env, argv[0], &bin)) {
        return enif_make_badarg(env);
    }
    if (bin.size > DIRTY_THRESHOLD) {
        return enif_schedule_nif(env, "crc32", ERL_NIF_DIRTY_JOB_CPU_BOUND, crc32_dirty, argc, argv);
    }
    return enif_make_uint(env, crc32_update(0, bin.data, bin.size));
}

static ERL_NIF_TERM adler32_dirty(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    ErlNifBinary bin;
    if (argc != 1 || !inspect_input(env, argv[0], &bin)) {
        return enif_make_badarg(env);
    }
    return enif_make_uint(env, adler32_update(1, bin.data, bin.size));
}

static ERL_NIF_TERM adler32_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    ErlNifBinary bin;
    if (argc != 1 || !inspect_input(env, argv[0], &bin)) {
        return enif_make_badarg(env);
    }
    if (bin.size > DIRTY_THRESHOLD) {
        return enif_schedule_nif(env, "adler32", ERL_NIF_DIRTY_JOB_CPU_BOUND, adler32_dirty, argc, argv);
    }
    return enif_make_uint(env, adler32_update(1, bin.data, bin.size));
}

static int load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info)
{
    (void)env;
    (void)priv_data;
    (void)load_info;
    build_crc_table();
    return 0;
}

static ErlNifFunc nif_funcs[] = {
    {"crc32", 1, crc32_nif, 0},
    {"adler32", 1, adler32_nif, 0},
};

ERL_NIF_INIT(Elixir.KinShop.Native.Checksum, nif_funcs, load, NULL, NULL, NULL);
