Feature: Disabled flag evaluation

  # flagops' translation of flagd-testbed gherkin/disabled.feature, against
  # flags/disabled-flags.yaml: a disabled flag without an off value serves no value, so
  # the caller's default, with reason DISABLED.

  Background:
    Given a stable flagops provider

  Scenario Outline: Evaluating a disabled flag returns reason DISABLED and code default
    Given a <type>-flag with key "<key>" and a default value "<default>"
    When the flag was evaluated with details
    Then the resolved details value should be "<default>"
    And the reason should be "DISABLED"
    And the variant should be "off"

    Examples:
      | key                   | type    | default |
      | disabled-string-flag  | String  | bye     |
      | disabled-integer-flag | Integer | 1       |
      | disabled-float-flag   | Float   | 0.1     |
      | disabled-object-flag  | Object  | {}      |

  # flagd: the caller's default with DISABLED. flagops: a disabled Boolean flag reads
  # false, whatever the caller's default, with STATIC (docs/ofrep.md).
  Scenario Outline: Evaluating a disabled Boolean flag returns false
    Given a Boolean-flag with key "disabled-boolean-flag" and a default value "<default>"
    When the flag was evaluated with details
    Then the resolved details value should be "false"
    And the reason should be "STATIC"

    Examples:
      | default |
      | false   |
      | true    |

  @skip-flag-sets
  Scenario: Flag disabled in one flag set, enabled in another
    Given a Boolean-flag with key "cross-flagset-flag" and a default value "false"
    When the flag was evaluated with details
    Then the reason should be "DISABLED"
