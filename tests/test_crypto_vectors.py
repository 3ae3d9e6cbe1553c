"""WeCom callback vectors (docs/wecom.md §2: Tencent's sample and wechatpy's tests) against both
implementations: the simulator's own crypto (pycryptodome, written from the protocol text) and
wechatpy (what the bot decrypts with)."""

from __future__ import annotations

import pytest
import xmltodict
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.work import crypto as wechatpy_work_crypto
from wechatpy.work.crypto import WeChatCrypto
from wechatpy.work.exceptions import InvalidCorpIdException

from bot.simulator.crypto import CallbackCrypto, CryptoError
from bot.wecom.callback import expected_signature

A = {
    "token": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    "corp": "ww1436e0e65a779aee",
}
B = {"token": "123456", "key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "corp": "wx49f0ab532d5d035a"}

A1 = {
    "sig": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    "ts": "1476416373",
    "nonce": "47744683",
    "echostr": "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
    "reply": "1288432023552776189",
}
A2_ENCRYPT = "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
A2 = {
    "sig": "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
    "ts": "1476422779",
    "nonce": "1597212914",
    "body": "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n"
    f"<Encrypt><![CDATA[{A2_ENCRYPT}]]></Encrypt>\n<AgentID><![CDATA[1000002]]></AgentID>\n</xml>",
    "plain": "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
    "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
    "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>",
}
A3 = {
    "encrypt": "/K4xJYsBwQssQzE/v2nbvIeXv4RSPpm4QbLqQSJqdvTVzKdF5zyFpDqi7SqZlsgsfUlux8Dk7Jys7Ury6tmjaV7Ak7EN8Fjekv0jUn4RYgN674vkPCc7yKF6FR0b4Vk+qgr+pFzWinL/dQMypCC7C1Q5hPHR2YpGczDGP23egDaV+a9l+1F0nloF2FdIGDCDJkW6PA6Ru++xQfQf3QP3ZbMEe7qI2G0aSSFw5CQUZm9tUd7mInaxLLkgko8Aw08RmSWw97bU3XhkVtzZOIZsmTxTmNFpaRAESl2hTWtrz5av2a7kQfSt/hZos75FjcWUE/7jB7ApcbsBQxCrUds0wSLuTl4PGBMpdFQn1gVCerDw+rJhy7tZikFtyLimEaCc",
    "sig": "fabff8670719a0b942ff09f39446ce54456d412b",
}
B1 = {
    "sig": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
    "ts": "1411443780",
    "nonce": "437374425",
    "echostr": "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
    "reply": "5927782489442352469",
}
B2 = {
    "sig": "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
    "ts": "1411525903",
    "nonce": "461056294",
    "encrypt": "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=",
}
B3_REPLY = (
    "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
    "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n"
    "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
)
B3_ENCRYPT = "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
FIXED = b"1234567890123456"


def ours(v: dict[str, str]) -> CallbackCrypto:
    return CallbackCrypto(v["token"], v["key"], v["corp"])


def theirs(v: dict[str, str]) -> WeChatCrypto:
    return WeChatCrypto(v["token"], v["key"], v["corp"])


@pytest.fixture
def fixed_random(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wechatpy_work_crypto.PrpCrypto, "get_random_string", lambda self: FIXED.decode())


@pytest.mark.parametrize(("vector", "keys"), [(A1, A), (B1, B)])
def test_url_verification_vectors(vector: dict[str, str], keys: dict[str, str]) -> None:
    assert (
        ours(keys).verify_url(vector["sig"], vector["ts"], vector["nonce"], vector["echostr"])
        == vector["reply"]
    )
    assert (
        theirs(keys).check_signature(vector["sig"], vector["ts"], vector["nonce"], vector["echostr"])
        == vector["reply"]
    )


@pytest.mark.parametrize(
    ("keys", "ts", "nonce", "encrypted", "sig"),
    [
        (A, A1["ts"], A1["nonce"], A1["echostr"], A1["sig"]),
        (A, A2["ts"], A2["nonce"], A2_ENCRYPT, A2["sig"]),
        (B, B1["ts"], B1["nonce"], B1["echostr"], B1["sig"]),
        (B, B2["ts"], B2["nonce"], B2["encrypt"], B2["sig"]),
    ],
)
def test_the_callback_endpoint_signs_like_the_vectors(
    keys: dict[str, str], ts: str, nonce: str, encrypted: str, sig: str
) -> None:
    """The signature the bot's own check compares with (before wechatpy decrypts anything)."""
    assert expected_signature(keys["token"], ts, nonce, encrypted) == sig


def test_url_verification_with_another_nonce_fails_in_both() -> None:
    with pytest.raises(CryptoError):
        ours(B).verify_url(B1["sig"], B1["ts"], "437374424", B1["echostr"])
    with pytest.raises(InvalidSignatureException):
        theirs(B).check_signature(B1["sig"], B1["ts"], "437374424", B1["echostr"])


def test_a2_post_decrypts_identically() -> None:
    assert ours(A).decrypt_envelope(A2_ENCRYPT, A2["sig"], A2["ts"], A2["nonce"]) == A2["plain"]
    assert theirs(A).decrypt_message(A2["body"], A2["sig"], A2["ts"], A2["nonce"]) == A2["plain"]


def test_b2_post_decrypts_identically() -> None:
    body = f"<xml><ToUserName><![CDATA[{B['corp']}]]></ToUserName><Encrypt><![CDATA[{B2['encrypt']}]]></Encrypt></xml>"
    mine = ours(B).decrypt_envelope(B2["encrypt"], B2["sig"], B2["ts"], B2["nonce"])
    assert mine == theirs(B).decrypt_message(body, B2["sig"], B2["ts"], B2["nonce"])
    message = xmltodict.parse(mine)["xml"]
    assert (message["FromUserName"], message["Content"], message["MsgId"], message["AgentID"]) == (
        "messense",
        "test",
        "4363689963896700987",
        "1",
    )


def test_a3_deterministic_encryption(fixed_random: None) -> None:
    assert ours(A).encrypt(A2["plain"], FIXED) == A3["encrypt"]
    assert ours(A).sign(A2["ts"], A2["nonce"], A3["encrypt"]) == A3["sig"]
    envelope = xmltodict.parse(theirs(A).encrypt_message(A2["plain"], A2["nonce"], A2["ts"]))["xml"]
    assert (envelope["Encrypt"], envelope["MsgSignature"]) == (A3["encrypt"], A3["sig"])


def test_b3_reply_envelope_is_byte_identical(fixed_random: None) -> None:
    expected = (
        f"<xml>\n<Encrypt><![CDATA[{B3_ENCRYPT}]]></Encrypt>\n"
        "<MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>\n"
        "<TimeStamp>1411525903</TimeStamp>\n<Nonce><![CDATA[461056294]]></Nonce>\n</xml>"
    )
    assert ours(B).reply_envelope(B3_REPLY, "461056294", "1411525903", FIXED) == expected
    assert theirs(B).encrypt_message(B3_REPLY, "461056294", "1411525903") == expected


@pytest.mark.parametrize("text", ["<xml><Content>你好，三审</Content></xml>", "x", "长" * 5000])
def test_round_trips_between_implementations(text: str) -> None:
    encrypted = ours(A).encrypt(text)
    signature = ours(A).sign("1700000000", "42", encrypted)
    body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    assert theirs(A).decrypt_message(body, signature, "1700000000", "42") == text
    envelope = xmltodict.parse(theirs(A).encrypt_message(text, "43", "1700000001"))["xml"]
    assert ours(A).decrypt_envelope(envelope["Encrypt"], envelope["MsgSignature"], "1700000001", "43") == text


def test_negative_cases_fail_in_both() -> None:
    encrypted = ours(A).encrypt("<xml/>")
    good = ours(A).sign("1", "2", encrypted)
    body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    bad_sig = ("0" if good[0] != "0" else "1") + good[1:]
    with pytest.raises(CryptoError):
        ours(A).decrypt_envelope(encrypted, bad_sig, "1", "2")
    with pytest.raises(InvalidSignatureException):
        theirs(A).decrypt_message(body, bad_sig, "1", "2")
    other_corp = {**A, "corp": "wwsomeoneelse00000"}
    with pytest.raises(CryptoError):
        ours(other_corp).decrypt(encrypted)
    with pytest.raises(InvalidCorpIdException):
        theirs(other_corp).decrypt_message(body, good, "1", "2")
    # CBC has no integrity of its own: a tampered ciphertext is caught by the signature.
    tampered = encrypted[:10] + ("A" if encrypted[10] != "A" else "B") + encrypted[11:]
    with pytest.raises(CryptoError):
        ours(A).decrypt_envelope(tampered, good, "1", "2")
    with pytest.raises(InvalidSignatureException):
        theirs(A).decrypt_message(body.replace(encrypted, tampered), good, "1", "2")
    with pytest.raises(CryptoError):
        ours(A).decrypt("not base64!")
