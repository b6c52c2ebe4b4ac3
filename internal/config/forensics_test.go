package config

import (
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/observer-dev/observer/internal/incident"
)

func TestIncidentRulesDefaultToEveryRuleAndRefuseUnknownOnes(t *testing.T) {
	c, err := Parse(nil, Defaults{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Forensics.IncidentRules, incident.RuleNames()) {
		t.Errorf("default rules %v, want every rule %v", c.Forensics.IncidentRules, incident.RuleNames())
	}
	c, err = Parse([]string{"--incident-rules", "none"}, Defaults{}, io.Discard)
	if err != nil || len(c.Forensics.IncidentRules) != 0 {
		t.Errorf("none: rules %v, err %v", c.Forensics.IncidentRules, err)
	}
	c, err = Parse([]string{"--incident-rules", "residue, fatal_signal"}, Defaults{}, io.Discard)
	if err != nil || !reflect.DeepEqual(c.Forensics.IncidentRules, []string{"residue", "fatal_signal"}) {
		t.Errorf("two rules: %v, err %v", c.Forensics.IncidentRules, err)
	}
	_, err = Parse([]string{"--incident-rules", "residue,slow_copyup"}, Defaults{}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `"slow_copyup"`) || !strings.Contains(err.Error(), "slow_copy_up") {
		t.Errorf("a misspelt rule: err %v, want it named with the known ones", err)
	}
}
