Feature: Flag evaluation

  # flagops' translation of the provider TCK's evaluation scenarios (flagd-testbed
  # gherkin/evaluation.feature and the OpenFeature specification's evaluation suite),
  # against the flags of flags/testing-flags.yaml and flags/zero-flags.yaml.
  #
  # Where flagops reports another reason than flagd by design, the row expects flagops'
  # reason and says so in a comment: flagops has no DEFAULT reason (the on value is
  # STATIC, a rollout's off value SPLIT) and serves "no value" (the caller's default)
  # with DISABLED.

  Background:
    Given a stable flagops provider

  Scenario Outline: Resolve values
    Given a <type>-flag with key "<key>" and a default value "<default>"
    When the flag was evaluated with details
    Then the resolved details value should be "<resolved_value>"
    And the reason should be "STATIC"
    And the error-code should be ""

    Examples:
      | key          | type    | default | resolved_value                                                               |
      | boolean-flag | Boolean | false   | true                                                                         |
      | string-flag  | String  | bye     | hi                                                                           |
      | integer-flag | Integer | 1       | 10                                                                           |
      | float-flag   | Float   | 0.1     | 0.5                                                                          |
      | object-flag  | Object  | {}      | {"showImages": true, "title": "Check out these pics!", "imagesPerPage": 100} |

  # flagops names the variant of a flag's value "on" (and "off"): a Boolean flag's
  # variants are flagd's, the others are not.
  Scenario: Resolve the variant of a Boolean flag
    Given a Boolean-flag with key "boolean-flag" and a default value "false"
    When the flag was evaluated with details
    Then the variant should be "on"

  @skip-variant-names
  Scenario Outline: Resolve variants by name
    Given a <type>-flag with key "<key>" and a default value "<default>"
    When the flag was evaluated with details
    Then the variant should be "<variant>"

    Examples:
      | key          | type    | default | variant  |
      | string-flag  | String  | bye     | greeting |
      | integer-flag | Integer | 1       | ten      |
      | float-flag   | Float   | 0.1     | half     |
      | object-flag  | Object  | {}      | template |

  Scenario Outline: Resolves zero value
    Given a <type>-flag with key "<key>" and a default value "<default>"
    When the flag was evaluated with details
    Then the resolved details value should be "<resolved_value>"
    And the reason should be "STATIC"

    Examples:
      | key               | type    | default | resolved_value |
      | boolean-zero-flag | Boolean | true    | false          |
      | string-zero-flag  | String  | hi      |                |
      | integer-zero-flag | Integer | 1       | 0              |
      | float-zero-flag   | Float   | 0.1     | 0.0            |

  Scenario Outline: Resolves zero value with targeting
    Given a <type>-flag with key "<key>" and a default value "<default>"
    And a context containing a key "email", with type "String" and with value "ballmer@macrosoft.com"
    When the flag was evaluated with details
    Then the resolved details value should be "<resolved_value>"
    And the reason should be "TARGETING_MATCH"
    And the variant should be "zero"

    Examples:
      | key                        | type    | default | resolved_value |
      | boolean-targeted-zero-flag | Boolean | true    | false          |
      | string-targeted-zero-flag  | String  | hi      |                |
      | integer-targeted-zero-flag | Integer | 1       | 0              |
      | float-targeted-zero-flag   | Float   | 0.1     | 0.0            |

  # flagd: reason DEFAULT. flagops: STATIC for the flag's value, SPLIT for the Boolean
  # flag, whose false comes from a rollout of 0 % (its on value is true).
  Scenario Outline: Resolves zero value with targeting using default
    Given a <type>-flag with key "<key>" and a default value "<default>"
    And a context containing a key "email", with type "String" and with value "ballmer@none.com"
    When the flag was evaluated with details
    Then the resolved details value should be "<resolved_value>"
    And the reason should be "<reason>"

    Examples:
      | key                        | type    | default | resolved_value | reason |
      | boolean-targeted-zero-flag | Boolean | true    | false          | SPLIT  |
      | string-targeted-zero-flag  | String  | hi      |                | STATIC |
      | integer-targeted-zero-flag | Integer | 1       | 0              | STATIC |
      | float-targeted-zero-flag   | Float   | 0.1     | 0.0            | STATIC |

  # flagd: reason DEFAULT. flagops: no value is DISABLED, with the caller's default.
  Scenario Outline: Resolves flag with no default variant correctly
    Given a <type>-flag with key "<key>" and a default value "<code_default>"
    And a context containing a key "email", with type "String" and with value "<email>"
    When the flag was evaluated with details
    Then the resolved details value should be "<resolved_value>"
    And the reason should be "<reason>"

    Examples:
      | key                                         | type    | email              | code_default | resolved_value | reason          |
      | undefined-default-flag                      | Integer |                    | 100          | 100            | DISABLED        |
      | no-default-flag-null-targeting-variant      | String  | wozniak@orange.com | Inventor     | Inventor       | DISABLED        |
      | no-default-flag-null-targeting-variant      | String  | wozniak@orange.com | Founder      | Founder        | DISABLED        |
      | no-default-flag-null-targeting-variant      | String  | jobs@orange.com    | CEO          | CEO            | TARGETING_MATCH |
      | no-default-flag-undefined-targeting-variant | String  | wozniak@orange.com | Retired      | Retired        | DISABLED        |

  # A Boolean flag always has a value (false when off), so it cannot serve the caller's
  # default.
  @skip-boolean-always-has-value
  Scenario Outline: Resolves a Boolean flag with no default variant to the caller's default
    Given a Boolean-flag with key "null-default-flag" and a default value "<code_default>"
    When the flag was evaluated with details
    Then the resolved details value should be "<code_default>"
    And the reason should be "DEFAULT"

    Examples:
      | code_default |
      | true         |
      | false        |

  Scenario Outline: Resolves based on context
    Given a String-flag with key "context-aware" and a default value "EXTERNAL"
    And a context containing a key "fn", with type "String" and with value "<fn>"
    And a context containing a key "ln", with type "String" and with value "Świętopełk"
    And a context containing a key "age", with type "Integer" and with value "29"
    And a context containing a key "customer", with type "Boolean" and with value "false"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "<reason>"

    Examples:
      | fn       | value    | reason          |
      | Sulisław | INTERNAL | TARGETING_MATCH |
      | Sulisła  | EXTERNAL | STATIC          |

  Scenario: Resolves the flag's value when the context is empty
    Given a String-flag with key "context-aware" and a default value "INTERNAL"
    When the flag was evaluated with details
    Then the resolved details value should be "EXTERNAL"

  Scenario: Flag not found
    Given a String-flag with key "missing-flag" and a default value "uh-oh"
    When the flag was evaluated with details
    Then the resolved details value should be "uh-oh"
    And the reason should be "ERROR"
    And the error-code should be "FLAG_NOT_FOUND"

  Scenario Outline: Type error
    Given a <type>-flag with key "<key>" and a default value "<default>"
    When the flag was evaluated with details
    Then the resolved details value should be "<default>"
    And the reason should be "ERROR"
    And the error-code should be "TYPE_MISMATCH"

    # flagops has one number type: an Integer evaluation of a number that is not whole
    # is a type mismatch.
    Examples:
      | key         | type    | default |
      | wrong-flag  | Integer | 13      |
      | wrong-flag  | Boolean | true    |
      | string-flag | Object  | {}      |
      | float-flag  | Integer | 1       |
      | object-flag | String  | bye     |
