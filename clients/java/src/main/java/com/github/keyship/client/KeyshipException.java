package com.github.keyship.client;

/**
 * KeyshipException is an error answer of keyship's host API: a Connect
 * error code ({@code invalid_argument}, {@code not_found},
 * {@code permission_denied}, {@code unavailable}, ...; the gRPC codes in
 * lower case) and a message that names the spec setting, the ref and the
 * reason. It never holds secret bytes. Only {@code unavailable} is worth
 * retrying.
 */
public final class KeyshipException extends Exception {
  private static final long serialVersionUID = 1L;

  private final String code;
  private final int httpStatus;

  public KeyshipException(String code, String message, int httpStatus) {
    super(code + ": " + message);
    this.code = code;
    this.httpStatus = httpStatus;
  }

  /** The Connect error code, e.g. {@code invalid_argument}. */
  public String code() {
    return code;
  }

  /** The HTTP status the error came with, e.g. 400. */
  public int httpStatus() {
    return httpStatus;
  }

  /** Whether a later try may succeed (the secret store was unavailable). */
  public boolean retryable() {
    return "unavailable".equals(code);
  }
}
