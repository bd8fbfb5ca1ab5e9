package sentiment_test

import (
	"fmt"

	"github.com/omnibus-dev/omnibus/pkg/sentiment"
)

func ExampleAnalyze() {
	r := sentiment.Analyze("快递三天都没更新，我要投诉！！")
	fmt.Printf("%s %s escalation=%v score=%.2f\n", r.Label, r.Lang, r.Escalation, r.Score)
	for _, c := range r.Cues {
		fmt.Printf("  %s %q %+.1f %v\n", c.Kind, c.Term, c.Contribution, c.Modifiers)
	}
	// Output:
	// negative zh escalation=true score=-0.86
	//   escalation "投诉" -3.0 []
	//   emphasis "!!" -0.3 []
}

func ExampleTracker() {
	tr, err := sentiment.NewTracker(sentiment.TrackerConfig{})
	if err != nil {
		panic(err)
	}
	for _, msg := range []string{
		"你好，我的快递到哪了？",
		"已经一周了还没到，太慢了",
		"客服也不回消息，太差劲了！！",
		"好的，刚刚收到了，谢谢",
		"东西不错，很满意",
	} {
		if t := tr.Observe(sentiment.Analyze(msg)); t != sentiment.Unchanged {
			fmt.Printf("%s after %q\n", t, msg)
		}
	}
	// Output:
	// turned_negative after "已经一周了还没到，太慢了"
	// recovered after "东西不错，很满意"
}

func ExampleWithLexiconFile() {
	a, err := sentiment.New(sentiment.WithLexiconFile("testdata/tenant_example.tsv"))
	if err != nil {
		panic(err)
	}
	for _, msg := range []string{"我要投诉一下物流", "再不退款我就去黑猫投诉", "I will dispute this with my card issuer"} {
		r := a.Analyze(msg)
		fmt.Printf("%s escalation=%v %q\n", r.Label, r.Escalation, msg)
	}
	// Output:
	// neutral escalation=false "我要投诉一下物流"
	// negative escalation=true "再不退款我就去黑猫投诉"
	// negative escalation=true "I will dispute this with my card issuer"
}
