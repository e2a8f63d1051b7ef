defmodule KinShop.Native.Checksum do
  @moduledoc """
  CRC-32 and Adler-32 checksums implemented in C (`c_src/checksum_nif.c`).

  They are used to fingerprint webhook payloads and warehouse export files.
  For inputs under 64 KiB the NIF runs on a normal scheduler; larger
  binaries are hashed on a dirty scheduler by the C side itself.
  """

  @on_load :load_nif

  @doc false
  def load_nif do
    :kin_shop
    |> :code.priv_dir()
    |> Path.join("native/checksum_nif")
    |> String.to_charlist()
    |> :erlang.load_nif(0)
    |> case do
      :ok -> :ok
      {:error, {_reason, _text}} -> :ok
    end
  end

  @doc """
  Computes the CRC-32 (IEEE 802.3 polynomial) of `data`, the same value as
  `:erlang.crc32/1`, returned as a non-negative integer.
  """
  @spec crc32(iodata()) :: non_neg_integer()
  def crc32(_data), do: :erlang.nif_error(:nif_not_loaded)

  @doc "Computes the Adler-32 checksum of `data` as defined in RFC 1950."
  @spec adler32(iodata()) :: non_neg_integer()
  def adler32(_data), do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  Returns the CRC-32 of `data` as an eight-character lower-case hex string,
  the format used in the `x-kin-checksum` webhook header.
  """
  @spec crc32_hex(iodata()) :: String.t()
  def crc32_hex(data) do
    data
    |> crc32()
    |> Integer.to_string(16)
    |> String.pad_leading(8, "0")
    |> String.downcase()
  end
end
